"""The Celery application: Redis broker, no result backend, one dedicated queue for inference.

How a job survives a dead worker (kill -9, OOM, a lost machine):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only when its task returns; a
  pool child that dies mid-task has its message put back at once by the surviving parent process.
- When the whole worker dies, its message stays in kombu's "unacked" set and kombu's restore sweep puts it back
  once it is older than ``visibility_timeout``. That timeout must be longer than the longest job (else a slow
  job would be handed to a second worker while the first still runs it), so it is
  ``job_time_limit + VISIBILITY_MARGIN_S``: the sweep alone is a slow backstop.
- The fast path is a job lease (``backend/jobs/leases.py``): the process running a job refreshes a short-lived
  Redis key; a reaper that every live worker runs puts a job whose lease expired back into the waiting queue
  within about ``LEASE_TTL_S + REAP_INTERVAL_S`` seconds. The dispatcher then sends a fresh message with a new
  task id, and the old message, if kombu ever restores it, no longer matches ``Job.celery_task_id`` and is
  dropped. Each start counts in ``Job.attempts``; after ``MAX_ATTEMPTS`` the job fails with a clear reason.

kombu 5.7's Redis transport runs ``restore_visible`` every ``unacked_restore_interval`` seconds and scans
Redis on every ``unacked_restore_throttle``-th call, so a sweep happens about every ``interval * throttle``
seconds; both are set so that sweep runs every ``RESTORE_SWEEP_S`` seconds.
"""

from __future__ import annotations

import threading

from celery import Celery

from backend.settings import Settings

QUEUE = "inference"
TASK_NAME = "maskweb.segment_jobs"
VISIBILITY_MARGIN_S = 300  # beyond the hard time limit, so no running job's message is ever restored
HARD_LIMIT_MARGIN_S = 30  # the soft limit lets the task record `timeout`; the hard one kills it after this
RESTORE_SWEEP_S = 10
MODEL_LOAD_TIMEOUT_S = 900  # a pool child may take this long in worker_process_init (loading the model)


def broker_transport_options(settings: Settings) -> dict:
    """kombu Redis transport options; see the module docstring for why each value is what it is."""
    return {
        "visibility_timeout": settings.job_time_limit + HARD_LIMIT_MARGIN_S + VISIBILITY_MARGIN_S,
        "unacked_restore_interval": RESTORE_SWEEP_S,
        "unacked_restore_throttle": 1,
    }


def make_celery(settings: Settings):
    """A Celery app for ``settings`` (``redis_url`` must be set). Tasks are registered by
    ``backend.jobs.tasks``, which only workers import; the web sends tasks by name."""
    if not settings.redis_url:
        raise ValueError("REDIS_URL is not set: the job queue needs a Redis server (maskweb run starts one)")
    app = Celery("maskweb", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_routes={TASK_NAME: {"queue": QUEUE}},
        task_serializer="json",
        accept_content=["json"],
        task_soft_time_limit=settings.job_time_limit,
        task_time_limit=settings.job_time_limit + HARD_LIMIT_MARGIN_S,
        worker_proc_alive_timeout=MODEL_LOAD_TIMEOUT_S,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    app.maskweb_settings = settings
    return app


_apps: dict[tuple[str | None, int], object] = {}
_apps_lock = threading.Lock()


def celery_for(settings: Settings):
    """The process-wide Celery app used to send tasks for ``settings`` (one per broker and time limit)."""
    key = (settings.redis_url, settings.job_time_limit)
    with _apps_lock:
        if key not in _apps:
            _apps[key] = make_celery(settings)
        return _apps[key]
