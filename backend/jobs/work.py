"""What a worker does for a job, without Celery: claim it, run the stages, record the outcome.

``run_jobs(settings, segmenter, heartbeat, job_ids, task_id)`` runs each job of one queue message in turn:

1. claim: take the job's lease (``leases``), check the message is the job's current dispatch
   (``Job.celery_task_id == task_id``; a stale or duplicate message is dropped), count the attempt, state
   ``running``;
2. stages ``decode`` (the stored original, read from the file store), ``model`` and ``masks`` (reported by the
   pipeline's progress callback), ``saving`` (result JSON and overlay PNG, each written atomically);
3. ``done`` with the summary (instance_count, classes, timings), or ``failed`` with ``error_code`` and a
   sentence, or ``cancelled`` when the owner asked at a stage boundary. Written result files of a job that did
   not finish are removed.

Every change is committed first and then published (``events``). Every write is conditional on the job still
belonging to this message, so a worker that lost its lease (and whose job was handed to another worker) can
never overwrite the other's outcome: each job ends exactly once.
"""

from __future__ import annotations

import logging
import time

from backend.settings import Settings

from .connections import engine, file_store
from .events import publish_job
from .leases import MAX_ATTEMPTS, worker_lost_error

log = logging.getLogger(__name__)

CANCELLED_ERROR = {"error_code": "cancelled", "error": "Cancelled by its owner."}  # as backend.storage.repo
PROGRESS_EVERY_S = 0.5  # at most this often a progress-only update is written and published


class JobCancelled(Exception):
    """The owner cancelled the job; raised at a stage boundary."""


class JobLost(Exception):
    """The job no longer belongs to this message (deleted, or handed to another worker)."""


class JobFailed(Exception):
    """A failure with a machine-readable ``code`` and a sentence for the user."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def classify_error(exc: BaseException) -> tuple[str, str]:
    """``(error_code, message)`` for an exception raised while running a job."""
    from celery.exceptions import SoftTimeLimitExceeded

    from backend.segmentation.images import ImageRejected

    if isinstance(exc, JobFailed):
        return exc.code, exc.message
    if isinstance(exc, SoftTimeLimitExceeded):
        return "timeout", "The job took longer than the time limit for one image and was stopped."
    if isinstance(exc, ImageRejected):
        return "bad_image", f"The stored image could not be read: {exc.message}"
    if isinstance(exc, MemoryError):
        return "out_of_memory", "The worker ran out of memory while segmenting this image."
    return "internal", f"Segmentation failed: {type(exc).__name__}: {exc}"


class JobRun:
    """One attempt at one job by this process: the conditional writes and the stage clock."""

    def __init__(self, settings: Settings, job_id: str, task_id: str):
        self.settings = settings
        self.job_id = job_id
        self.task_id = task_id
        self.stage: str | None = None
        self.stage_started = time.monotonic()
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.last_progress_write = 0.0

    # --- database -----------------------------------------------------------------------------------------

    def _update(self, **values) -> None:
        """Apply ``values`` to the job if it still belongs to this message, then publish it.

        Raises JobLost when it does not (deleted, or taken over after this process lost its lease).
        """
        from sqlalchemy import update

        from backend.storage.db import session_scope
        from backend.storage.models import RUNNING, Job

        with session_scope(engine(self.settings)) as session:
            result = session.execute(
                update(Job)
                .where(Job.id == self.job_id, Job.celery_task_id == self.task_id, Job.state == RUNNING)
                .values(**values)
            )
            if not result.rowcount:
                raise JobLost(self.job_id)
        with session_scope(engine(self.settings)) as session:
            job = session.get(Job, self.job_id)
        if job is not None:
            publish_job(self.settings, job)

    def _cancel_requested(self) -> bool:
        from sqlalchemy import select

        from backend.storage.db import session_scope
        from backend.storage.models import Job

        with session_scope(engine(self.settings)) as session:
            flag = session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id))
        if flag is None:
            raise JobLost(self.job_id)
        return bool(flag)

    # --- stages -------------------------------------------------------------------------------------------

    def _close_stage(self) -> None:
        if self.stage is not None:
            now = time.monotonic()
            self.timings[self.stage] = round(self.timings.get(self.stage, 0.0) + now - self.stage_started, 4)
            self.stage_started = now

    def enter_stage(self, stage: str) -> None:
        """A stage boundary: honour a cancel request, then record the new stage."""
        if self._cancel_requested():
            raise JobCancelled(self.job_id)
        self._close_stage()
        self.stage = stage
        self.stage_started = time.monotonic()
        self.last_progress_write = time.monotonic()
        self._update(stage=stage, progress=0.0)

    def progress(self, stage: str, fraction: float) -> None:
        """The pipeline's progress callback: a new stage is a boundary; within a stage, throttled updates."""
        if stage != self.stage:
            self.enter_stage(stage)
            if fraction <= 0:
                return
        now = time.monotonic()
        if fraction < 1.0 and now - self.last_progress_write < PROGRESS_EVERY_S:
            return
        self.last_progress_write = now
        self._update(progress=max(0.0, min(1.0, float(fraction))))

    def finish(self, state: str, **values) -> None:
        """End the attempt in ``state`` (done, failed, cancelled) with ``values`` (summary or error)."""
        from backend.storage.models import utcnow

        self._close_stage()
        self.timings["total"] = round(time.monotonic() - self.started, 4)
        self._update(state=state, stage=None, finished_at=utcnow(), timings=dict(self.timings), **values)


def claim(settings: Settings, job_id: str, task_id: str):
    """Start an attempt at ``job_id`` for message ``task_id`` (the caller holds the lease).

    Returns the running Job, or None when the message must be dropped (the job is gone, finished, cancelled,
    belongs to a newer message, or has used up its attempts — those last two end the job here).
    """
    from sqlalchemy import update

    from backend.storage.db import session_scope
    from backend.storage.models import CANCELLED, FAILED, QUEUED, RUNNING, Job, utcnow

    with session_scope(engine(settings)) as session:
        job = session.get(Job, job_id)
        if job is None or job.celery_task_id != task_id or job.finished:
            return None
        guard = (Job.id == job_id, Job.celery_task_id == task_id, Job.state.in_((QUEUED, RUNNING)))
        if job.cancel_requested:
            values = dict(state=CANCELLED, stage=None, finished_at=utcnow(), **CANCELLED_ERROR)
        elif job.attempts >= MAX_ATTEMPTS:
            values = dict(state=FAILED, stage=None, finished_at=utcnow(), **worker_lost_error(job.attempts))
        else:
            values = dict(
                state=RUNNING,
                stage="decode",
                progress=0.0,
                started_at=utcnow(),
                attempts=Job.attempts + 1,
                error=None,
                error_code=None,
            )
        if not session.execute(update(Job).where(*guard).values(**values)).rowcount:
            return None
    with session_scope(engine(settings)) as session:
        job = session.get(Job, job_id)
    if job is not None:
        publish_job(settings, job)
    return job if job is not None and job.state == RUNNING else None


def _segment(settings: Settings, segmenter, run: JobRun) -> tuple[dict, float]:
    """The stages of one job; returns the done-summary values and the model+masks seconds."""
    from backend.segmentation.images import ImageLimits, load_image, to_array
    from backend.segmentation.overlay import render_overlay
    from backend.storage.files import JobFile

    store = file_store(settings)
    run.stage = "decode"  # claim() already recorded it
    original = store.read(run.job_id, JobFile.ORIGINAL)
    if original is None:
        raise JobFailed("image_missing", "The uploaded image is no longer in storage.")
    # The stored original passed the upload limits; as PNG it may be larger than the upload was.
    stored_limits = ImageLimits(max_bytes=4 * settings.max_pixels + (1 << 20), max_pixels=settings.max_pixels)
    image = load_image(original, stored_limits)
    pixels = to_array(image)

    run.enter_stage("model")
    model_started = time.monotonic()
    result = segmenter.segment(pixels, progress=run.progress)
    model_seconds = time.monotonic() - model_started

    run.enter_stage("saving")
    store.save_result(run.job_id, result.to_dict())
    store.save_overlay(run.job_id, render_overlay(pixels, result))
    summary = result.summary()
    return {"instance_count": summary["instance_count"], "classes": summary["classes"]}, model_seconds


def run_job(settings: Settings, segmenter, heartbeat, job_id: str, task_id: str) -> str | None:
    """One attempt at one job. Returns its final state, or None when the message was dropped."""
    from backend.storage.models import CANCELLED, DONE, FAILED

    from .metrics import record_job

    if not heartbeat.hold(job_id, task_id):
        log.info("job %s is held by another live worker; dropping duplicate message %s", job_id, task_id)
        return None
    try:
        job = claim(settings, job_id, task_id)
        if job is None:
            return None
        run = JobRun(settings, job_id, task_id)
        run.stage = "decode"
        model_seconds = None
        try:
            summary, model_seconds = _segment(settings, segmenter, run)
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
        record_job(settings, state, run.timings.get("total", 0.0), model_seconds if state == DONE else None)
        return state
    except JobLost:
        log.warning("job %s was deleted or handed to another worker; leaving it", job_id)
        if _job_gone(settings, job_id):
            file_store(settings).remove_job(job_id)  # deleted meanwhile: leave no files behind
        return None
    finally:
        heartbeat.drop(job_id)


def _job_gone(settings: Settings, job_id: str) -> bool:
    from backend.storage.db import session_scope
    from backend.storage.models import Job

    with session_scope(engine(settings)) as session:
        return session.get(Job, job_id) is None


def run_jobs(
    settings: Settings, segmenter, heartbeat, job_ids: list[str], task_id: str
) -> dict[str, str | None]:
    """Run the jobs of one queue message in turn, then let the dispatcher hand out more work.

    Returns ``{job_id: final state or None (dropped)}``. A later version may decode all of them and call
    ``segmenter.segment_batch`` once; the message shape (a list of ids) already allows it.
    """
    from .dispatch import pump

    outcomes = {job_id: run_job(settings, segmenter, heartbeat, job_id, task_id) for job_id in job_ids}
    try:
        pump(settings)
    except Exception:
        log.warning("could not pump the queue after a job; the heartbeat will retry", exc_info=True)
    return outcomes
