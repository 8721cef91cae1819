"""Progress events: a job's state pushed to its Socket.IO room through the Redis message queue.

Any process (worker, dispatcher in the web process) publishes with a write-only Flask-SocketIO emitter; the web
server's Socket.IO manager, listening on the same Redis channel, forwards the event to the browsers subscribed
to room ``job:<id>``. Publish only after the database commit: the row is the truth, the event a notification.
"""

from __future__ import annotations

import logging
import threading
import time

from flask_socketio import SocketIO

from backend.settings import Settings

log = logging.getLogger(__name__)

EVENT = "job"
_emitters: dict[str, object] = {}
_lock = threading.Lock()


def job_room(job_id: str) -> str:
    """The Socket.IO room of one job."""
    return f"job:{job_id}"


def _emitter(redis_url: str):
    with _lock:
        emitter = _emitters.get(redis_url)
        if emitter is None:
            emitter = SocketIO(message_queue=redis_url)  # no app: write-only
            _emitters[redis_url] = emitter
        return emitter


def emitter(settings: Settings):
    """The process's write-only Socket.IO emitter for ``settings.redis_url`` (made on first use)."""
    return _emitter(settings.redis_url)


def publish(settings: Settings, job_id: str, payload: dict) -> None:
    """Emit ``payload`` as event ``job`` to room ``job:<job_id>``, stamped ``emitted_at`` (UNIX seconds: how
    ``make load`` measures delivery latency). A failure is logged, never raised: a lost event costs only
    liveness (clients re-read the job over HTTP), never correctness."""
    try:
        stamped = {**payload, "emitted_at": time.time()}
        _emitter(settings.redis_url).emit(EVENT, stamped, to=job_room(job_id), namespace="/")
    except Exception:
        log.warning("could not publish the state of job %s", job_id, exc_info=True)


def publish_job(settings: Settings, job, queue_position: int | None = None) -> None:
    """Emit ``job.as_dict(queue_position)`` (the JSON of ``GET /api/jobs/{id}``) to the job's room."""
    publish(settings, job.id, job.as_dict(queue_position))
