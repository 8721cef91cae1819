"""What a worker does for a job, without Celery: the pipeline's stages between the job's state changes.

``run_jobs(settings, segmenter, heartbeat, job_ids, task_id)`` runs each job of one queue message in turn:

1. hold the job's lease (``leases``) and ``claim`` it (``lifecycle``: a stale or duplicate message is dropped);
2. the pipeline (``backend.segmentation.pipeline``): decode the stored original from the file store (made from
   the upload first if the web has not yet: ``backend.storage.originals``), then
   ``segment_and_save`` (model, masks, then the result JSON and overlay PNG into the job's files), its
   ``progress`` going to the job (``lifecycle.JobRun``: stage boundaries, cancel checks, events);
3. ``done`` with the summary (instance_count, classes, timings), or ``failed`` with ``error_code`` and a
   sentence, or ``cancelled`` when the owner asked at a stage boundary. Written result files of a job that did
   not finish are removed;
4. after the message's jobs, a dispatcher round, on the worker's maintenance thread (``leases.Heartbeat``).

This module adds only the job around the pipeline: its state (``lifecycle``), its events (``events``) and its
files (``connections.file_store``).
"""

from __future__ import annotations

import logging
from functools import partial

from celery.exceptions import SoftTimeLimitExceeded

from backend.segmentation.images import ImageRejected, to_array
from backend.segmentation.pipeline import Decoded, segment_and_save
from backend.segmentation.stages import MASKS, MODEL
from backend.settings import Settings
from backend.storage.files.failures import storage_failure
from backend.storage.models import CANCELLED, DONE, FAILED
from backend.storage.originals import original_image, stored_limits

from .connections import file_store
from .events import publish_job
from .lifecycle import CANCELLED_ERROR, JobCancelled, JobLost, JobRun, claim, job_gone
from .metrics import record_job

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """A failure with a machine-readable ``code`` and a sentence for the user."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def classify_error(exc: BaseException) -> tuple[str, str]:
    """``(error_code, message)`` for an exception raised while running a job."""
    if isinstance(exc, JobFailed):
        return exc.code, exc.message
    if isinstance(exc, SoftTimeLimitExceeded):
        return "timeout", "The job took longer than the time limit for one image and was stopped."
    if isinstance(exc, ImageRejected):
        return "bad_image", f"The stored image could not be read: {exc.message}"
    if isinstance(exc, MemoryError):
        return "out_of_memory", "The worker ran out of memory while segmenting this image."
    if failure := storage_failure(exc):
        return failure
    return "internal", f"Segmentation failed: {type(exc).__name__}: {exc}"


class JobOutputs:
    """The pipeline's ``ResultSink`` for one job: its overlay PNG and result JSON in the file store."""

    def __init__(self, store, job_id: str):
        self.store = store
        self.job_id = job_id

    def save_overlay(self, overlay) -> None:
        self.store.save_overlay(self.job_id, overlay)

    def save_result(self, document: dict) -> None:
        self.store.save_result(self.job_id, document)


def _segment(settings: Settings, segmenter, run: JobRun) -> dict:
    """The pipeline for one claimed job (in stage ``decode``); returns the done-summary values."""
    store = file_store(settings)
    # The original, or the upload when the web has not made the original from it yet (then made here).
    image = original_image(store, run.job_id, stored_limits(settings.max_pixels))
    if image is None:
        raise JobFailed("image_missing", "The uploaded image is no longer in storage.")
    decoded = Decoded(image, to_array(image))
    result = segment_and_save(segmenter, decoded, JobOutputs(store, run.job_id), progress=run.progress)
    summary = result.summary()
    return {"instance_count": summary["instance_count"], "classes": summary["classes"]}


def run_job(settings: Settings, segmenter, heartbeat, job_id: str, task_id: str) -> str | None:
    """One attempt at one job. Returns its final state, or None when the message was dropped."""
    if not heartbeat.hold(job_id, task_id):
        log.info("job %s is held by another live worker; dropping duplicate message %s", job_id, task_id)
        return None
    publish = partial(publish_job, settings)
    try:
        if claim(settings, job_id, task_id, publish) is None:
            return None
        run = JobRun(settings, job_id, task_id, publish)
        try:
            summary = _segment(settings, segmenter, run)
            run.finish(DONE, progress=1.0, **summary)
            state = DONE
        except JobCancelled:
            file_store(settings).remove_outputs(job_id)
            run.finish(CANCELLED, **CANCELLED_ERROR)
            state = CANCELLED
        except JobLost:
            raise
        except Exception as exc:
            code, message = classify_error(exc)
            log.warning("job %s failed (%s): %s", job_id, code, message, exc_info=code == "internal")
            file_store(settings).remove_outputs(job_id)
            run.finish(FAILED, error_code=code, error=message)
            state = FAILED
        model_seconds = run.timings.get(MODEL, 0.0) + run.timings.get(MASKS, 0.0) if state == DONE else None
        record_job(settings, state, run.timings.get("total", 0.0), model_seconds)
        return state
    except JobLost:
        log.warning("job %s was deleted or handed to another worker; leaving it", job_id)
        if job_gone(settings, job_id):
            file_store(settings).remove_job(job_id)  # deleted meanwhile: leave no files behind
        return None
    finally:
        heartbeat.drop(job_id)


def run_jobs(
    settings: Settings, segmenter, heartbeat, job_ids: list[str], task_id: str
) -> dict[str, str | None]:
    """Run the jobs of one queue message in turn, then ask for a dispatcher round to hand out more work
    (``heartbeat.request_round``: it runs on the worker's maintenance thread while this one takes its next
    message).

    Returns ``{job_id: final state or None (dropped)}``. A later version may decode all of them and call
    ``segmenter.detect`` once; the message shape (a list of ids) already allows it.
    """
    outcomes = {job_id: run_job(settings, segmenter, heartbeat, job_id, task_id) for job_id in job_ids}
    heartbeat.request_round()
    return outcomes
