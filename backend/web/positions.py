"""Queue positions as the web shows them, without reading every job per request.

With Redis (every deployment), positions come from the dispatcher: each round computes the whole fair order
once and stores it (``backend.jobs.queue_positions``: one HMGET for the jobs on the page). A job the last
round did not see yet has no position (``null``; its page gets the position in the next ``job`` event). A web
process without Redis (tests, a single process) computes the order from the database instead.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from backend.jobs import queue_positions as dispatched_positions
from backend.storage.models import QUEUED, Job
from backend.storage.queue_order import queue_positions

log = logging.getLogger(__name__)


def positions_for(session: Session, settings, jobs: list[Job]) -> dict[str, int]:
    """``{job_id: position}`` for the queued ones of ``jobs``; a Redis outage gives ``{}`` (logged)."""
    queued = [job.id for job in jobs if job.state == QUEUED]
    if not queued:
        return {}
    if not settings.redis_url:
        return queue_positions(session)
    try:
        return dispatched_positions(settings, queued)
    except Exception:
        log.warning("queue positions unavailable (Redis)", exc_info=True)
        return {}
