"""The Celery task and the worker process's life: only worker processes import this module.

``register(app)`` adds the task ``maskweb.segment_jobs(job_ids)`` to ``app`` and hooks the worker signals:

- ``worker_process_init`` (each pool process, or the solo worker, before it takes any message): load the
  ``Segmenter`` once — never per task —, warm it up (the first job must not pay for graph building), and start the ``Heartbeat`` thread (worker key, job leases, reaper);
- ``worker_process_shutdown``: stop the heartbeat and remove the worker key.

The task itself is a thin call into ``backend.jobs.work``.
"""

from __future__ import annotations

import logging
import os
import socket

from .celery_app import TASK_NAME

log = logging.getLogger(__name__)


class WorkerState:
    """What one worker process keeps between tasks: the loaded model and its heartbeat."""

    segmenter = None
    heartbeat = None


def start_process(settings, hostname: str) -> None:
    """Load the model and start the heartbeat for this process. Raises if the model cannot be loaded."""
    from backend.segmentation.pipeline import Segmenter

    from .leases import Heartbeat

    log.info(
        "worker process %d: loading the model (%s, %s)", os.getpid(), settings.model_config, settings.weights
    )
    WorkerState.segmenter = Segmenter.from_settings(settings)
    WorkerState.segmenter.warm_up()  # before the heartbeat: a worker counts as live once it is fast
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
    from celery.signals import worker_process_init, worker_process_shutdown

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

    worker_process_init.connect(on_process_init, weak=False)
    worker_process_shutdown.connect(on_process_shutdown, weak=False)

    @app.task(name=TASK_NAME, bind=True)
    def segment_jobs(self, job_ids: list[str]):
        """Run the jobs ``job_ids`` (32-hex ids) handed out by the dispatcher under this message's id."""
        from .work import run_jobs

        if WorkerState.segmenter is None:  # the process failed to load the model: let another take it
            raise RuntimeError("this worker process has no model loaded")
        run_jobs(settings, WorkerState.segmenter, WorkerState.heartbeat, list(job_ids), self.request.id)

    return segment_jobs
