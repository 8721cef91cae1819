"""The job queue: what the web calls to start and stop work.

- ``submit(settings, job_ids)`` after committing new ``queued`` jobs: hands them to Celery in fair order
  (a dispatcher round shared with concurrent uploads, ``dispatch.Coalescer``), without waiting for it.
- ``queue_positions(settings, job_ids)``: the jobs' positions as of the last dispatcher round (one Redis read).
- ``cancel(settings, job_id)``: a waiting job is cancelled at once; a running one gets ``cancel_requested`` and
  its worker stops at the next stage boundary (the job then ends ``cancelled``).
- ``pump(settings)`` after anything else that moves the queue (a delete).

Modules: ``celery_app`` (configuration), ``dispatch`` (fair dispatch, positions), ``events`` (Socket.IO
publishing), ``leases`` (heartbeats, leases, reaper), ``metrics`` (durations for /metrics), ``lifecycle`` (a
running job's state machine), ``work`` (the pipeline between those states) and ``tasks`` (the Celery task).
Importing this package loads what the web needs to hand out work (Celery's client, Redis, SQLAlchemy), never
the model: only ``work`` and ``tasks``, which workers alone import, reach the segmentation pipeline.
"""

from __future__ import annotations

from backend.settings import Settings
from backend.storage import repo
from backend.storage.db import session_scope
from backend.storage.models import Job

from . import dispatch
from .connections import engine
from .dispatch import coalescer, pump
from .dispatch import stored_positions as queue_positions
from .events import publish_job

__all__ = ["submit", "cancel", "connect", "pump", "queue_positions"]


def submit(settings: Settings, job_ids: list[str], wait_s: float = 0.0) -> bool:
    """Queue the committed jobs ``job_ids``: starts a dispatcher round that will see them (or asks the running
    one's successor to) and returns without waiting for it by default, so an upload is answered at once; the
    round publishes each new job's queue position to its watchers a moment later (a ``job`` event). With
    ``wait_s`` it waits up to that long for the round to store the positions; returns whether it did.

    The jobs are already in the database in state ``queued``, so they are safe even when Redis is down: the
    round fails (logged) and the next successful one hands them out.
    """
    return coalescer(settings).pump_and_wait(wait_s)


def connect(settings: Settings) -> None:
    """Open what handing out jobs needs (``dispatch.connect``) ahead of the first upload; a web process calls it
    once at start, in the background. Raises what connecting raises."""
    dispatch.connect(settings)


def cancel(settings: Settings, job_or_id) -> object | None:
    """Cancel a job (a ``Job`` or its id): a waiting one is ``cancelled`` at once, a running one gets
    ``cancel_requested`` and its worker ends it at the next stage boundary (``backend.storage.repo.cancel_job``,
    idempotent, so the web may have applied it already). Publishes the job's state and re-pumps the queue
    (the positions behind it move). Returns the updated ``Job`` (detached), or None when it no longer exists.
    """
    job_id = job_or_id if isinstance(job_or_id, str) else job_or_id.id
    with session_scope(engine(settings)) as session:
        repo.cancel_job(session, job_id)
    with session_scope(engine(settings)) as session:
        job = session.get(Job, job_id)
    if job is None:
        return None
    publish_job(settings, job)
    pump(settings)
    return job
