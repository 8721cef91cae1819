"""The Celery task and the worker process's life: only worker processes import this module.

``register(app)`` adds the task ``maskweb.segment_jobs(job_ids)`` to ``app`` and hooks the worker signals:

- ``worker_process_init`` (each pool process, or the solo worker, before it takes any message; for the threads
  pool, which batches jobs, ``worker_init`` in the worker process): lower the process's CPU priority
  (``settings.worker_nice``), load the ``Segmenter`` once — never per
  task — for ``batching.worker_batch_size`` images per network call, warm it up (the first job must not pay
  for graph building), wrap it in a ``BatchedSegmenter`` (concurrent jobs share model calls), and start the
  ``Heartbeat`` thread (worker key, job leases, reaper);
- ``worker_process_shutdown``: stop the heartbeat and remove the worker key.

The task itself is a thin call into ``backend.jobs.work``.
"""

from __future__ import annotations

import logging
import os
import socket
from functools import partial

from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from backend.segmentation.pipeline import Segmenter

from .batching import BatchedSegmenter, worker_batch_size
from .celery_app import TASK_NAME
from .leases import Heartbeat
from .metrics import record_batch
from .work import run_jobs

log = logging.getLogger(__name__)


class WorkerState:
    """What one worker process keeps between tasks: the loaded model and its heartbeat."""

    segmenter = None
    heartbeat = None


def lower_priority(increment: int) -> int:
    """Add ``increment`` to this process's nice value, before the model's threads exist (Linux gives each
    thread its own, and new threads inherit their creator's). On a machine shared with the web process, the
    scheduler then serves the web's short requests first and the model takes what is left: a model run is
    slower only by what the web actually uses, and uploads are not answered at the model's pace. Returns the
    new nice value; a refused change (a container without the right) is logged and ignored."""
    try:
        return os.nice(increment) if increment else os.nice(0)
    except OSError as exc:
        log.warning("could not lower the worker's CPU priority by %d: %s", increment, exc)
        return os.nice(0)


def start_process(settings, hostname: str) -> None:
    """Load the model and start the heartbeat for this process. Raises if the model cannot be loaded."""
    nice = lower_priority(settings.worker_nice)
    log.info("worker process %d: nice %d", os.getpid(), nice)
    log.info(
        "worker process %d: loading the model (%s, %s)", os.getpid(), settings.model_config, settings.weights
    )
    segmenter = Segmenter.from_settings(settings, batch_size=worker_batch_size(settings))
    segmenter.warm_up()  # before the heartbeat: a worker counts as live once it is fast
    WorkerState.segmenter = BatchedSegmenter(
        segmenter, settings.batch_wait_ms / 1000, partial(record_batch, settings)
    )
    WorkerState.heartbeat = Heartbeat(settings, hostname)
    WorkerState.heartbeat.beat()
    WorkerState.heartbeat.start()
    log.info("worker process %d: model loaded, ready as %s", os.getpid(), hostname)


def stop_process() -> None:
    if WorkerState.heartbeat is not None:
        WorkerState.heartbeat.stop()
        WorkerState.heartbeat = None


def register(app):
    """Register the task and the worker signal handlers on ``app`` (from ``make_celery``)."""
    settings = app.maskweb_settings

    def on_process_init(sender=None, **_):
        hostname = sender if isinstance(sender, str) and sender else f"maskweb@{socket.gethostname()}"
        try:
            start_process(settings, hostname)
        except BaseException:
            # Celery would log and carry on without a model; a process that cannot work must not take jobs.
            log.critical("worker process %d could not load the model; exiting", os.getpid(), exc_info=True)
            os._exit(3)

    def on_process_shutdown(**_):
        stop_process()

    def on_worker_init(sender=None, **_):
        # The threads pool (a worker batching several jobs per model call) runs its tasks in this process,
        # and Celery sends no worker_process_init for it: load the model here. Other pools load it per child.
        if "thread" in str(getattr(sender, "pool_cls", "")).lower():
            on_process_init(getattr(sender, "hostname", None))

    worker_process_init.connect(on_process_init, weak=False)
    worker_init.connect(on_worker_init, weak=False)
    worker_process_shutdown.connect(on_process_shutdown, weak=False)

    @app.task(name=TASK_NAME, bind=True)
    def segment_jobs(self, job_ids: list[str]):
        """Run the jobs ``job_ids`` (32-hex ids) handed out by the dispatcher under this message's id."""
        if WorkerState.segmenter is None:  # the process failed to load the model: let another take it
            raise RuntimeError("this worker process has no model loaded")
        run_jobs(settings, WorkerState.segmenter, WorkerState.heartbeat, list(job_ids), self.request.id)

    return segment_jobs
