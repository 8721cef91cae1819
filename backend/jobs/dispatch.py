"""The dispatcher: moves waiting jobs from the database into Celery in the fair order, and keeps every waiting
job's queue position up to date for its watchers.

Jobs wait in the database (``dispatched_at`` NULL) and only a few per user are inside Celery at a time
(``settings.max_inflight_per_user``), so one user's hundred images do not fill the broker queue ahead of
another user's one. The order is ``backend.storage.queue_order`` (the one definition, also used for the
positions users see). ``pump`` runs after every change that can move the queue: an upload, a cancel, a delete
(web), a finished job and every reaper round (worker). Runs are serialised by a Redis lock, so two processes
never hand out the same job or overshoot a user's cap.
"""

from __future__ import annotations

import logging
import uuid

from backend.settings import Settings

from .connections import engine, redis_client

log = logging.getLogger(__name__)

LOCK_KEY = "maskweb:dispatch:lock"
POSITIONS_KEY = "maskweb:dispatch:positions"  # {job_id: last published position}
LOCK_TIMEOUT_S = 60
LOCK_WAIT_S = 30


def queue_positions(session) -> dict[str, int]:
    """``{job_id: position}`` (1-based) of every queued job, in the order jobs will start."""
    from backend.storage.queue_order import queue_positions as positions

    return positions(session)


def _hand_out(settings: Settings) -> list[tuple[str, str]]:
    """Mark the next jobs in fair order as dispatched; returns ``[(job_id, celery_task_id)]`` to send."""
    from sqlalchemy import update

    from backend.storage.db import session_scope
    from backend.storage.models import QUEUED, Job, utcnow
    from backend.storage.queue_order import next_to_dispatch

    picked: list[tuple[str, str]] = []
    with session_scope(engine(settings)) as session:
        for job_id in next_to_dispatch(session, settings.max_inflight_per_user):
            task_id = uuid.uuid4().hex
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == QUEUED, Job.dispatched_at.is_(None))
                .values(dispatched_at=utcnow(), celery_task_id=task_id)
            )
            if result.rowcount:
                picked.append((job_id, task_id))
    return picked


def _send(settings: Settings, picked: list[tuple[str, str]]) -> None:
    """Publish one Celery message per job. A job whose message cannot be sent goes back to waiting."""
    from sqlalchemy import update

    from backend.storage.db import session_scope
    from backend.storage.models import QUEUED, Job

    from .celery_app import QUEUE, TASK_NAME, celery_for

    app = celery_for(settings)
    for job_id, task_id in picked:
        try:
            # One job per message today; the task takes a list so a worker can later run a model batch.
            app.send_task(TASK_NAME, args=[[job_id]], task_id=task_id, queue=QUEUE)
        except Exception:
            log.exception("could not send job %s to the queue; it stays waiting", job_id)
            with session_scope(engine(settings)) as session:
                session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.state == QUEUED, Job.celery_task_id == task_id)
                    .values(dispatched_at=None, celery_task_id=None)
                )


def _publish_positions(settings: Settings) -> dict[str, int]:
    """Publish a ``job`` event to every queued job whose position changed since the last publication."""
    from sqlalchemy import select

    from backend.storage.db import session_scope
    from backend.storage.models import Job

    from .events import publish_job

    r = redis_client(settings)
    with session_scope(engine(settings)) as session:
        positions = queue_positions(session)
        previous = {job_id: int(p) for job_id, p in r.hgetall(POSITIONS_KEY).items()}
        moved = [job_id for job_id, p in positions.items() if previous.get(job_id) != p]
        jobs = list(session.scalars(select(Job).where(Job.id.in_(moved)))) if moved else []
    pipe = r.pipeline()
    pipe.delete(POSITIONS_KEY)
    if positions:
        pipe.hset(POSITIONS_KEY, mapping={k: str(v) for k, v in positions.items()})
    pipe.execute()
    for job in sorted(jobs, key=lambda j: positions[j.id]):
        publish_job(settings, job, positions[job.id])
    return positions


def pump(settings: Settings) -> dict[str, int]:
    """Hand waiting jobs to Celery in fair order, then publish moved queue positions.

    Returns ``{job_id: queue position}`` of every queued job after the run. Raises redis errors when Redis is
    unreachable (the jobs stay waiting in the database and the next pump hands them out).
    """
    lock = redis_client(settings).lock(LOCK_KEY, timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_WAIT_S)
    if not lock.acquire():
        raise TimeoutError(f"the dispatcher lock {LOCK_KEY} stayed taken for {LOCK_WAIT_S}s")
    try:
        picked = _hand_out(settings)
        if picked:
            _send(settings, picked)
        return _publish_positions(settings)
    finally:
        try:
            lock.release()
        except Exception:  # expired while we worked: another pump may run now, which is harmless
            log.debug("dispatcher lock had expired", exc_info=True)
