"""A job's life in the database while a worker runs it: the state machine, each change exactly once.

``claim(settings, job_id, task_id, publish)`` starts an attempt for queue message ``task_id``: the job must
be the message's current dispatch (``Job.celery_task_id == task_id``; a stale or duplicate message gets None)
and still ``queued`` or ``running`` (a redelivered message after a worker died). A job whose owner asked to
cancel ends ``cancelled``; one that used up ``MAX_ATTEMPTS`` ends ``failed`` (``worker_lost``); otherwise the
attempt is counted and the job is ``running`` in stage ``decode``, with the stage clock started and the stage
durations to expect (``repo.recent_stage_seconds``: what recent jobs took) written for the pages.

``JobRun`` is that attempt: ``enter_stage`` (a stage boundary: honours a cancel request, raising
``JobCancelled``), ``progress`` (the pipeline's callback: boundaries and throttled fractions) and ``finish``
(``done``, ``failed`` or ``cancelled``, with the per-stage seconds). Every write is conditional on the job
still belonging to this message and running; when it does not (deleted, or handed to another worker after
this one lost its lease) the write changes nothing and raises ``JobLost``, so each job ends exactly once.

Every change is committed first and then handed to ``publish(job)`` (the worker publishes it on Socket.IO).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select, update

from backend.segmentation.stages import DECODE, PIPELINE_STAGES
from backend.settings import Settings
from backend.storage import repo
from backend.storage.db import session_scope
from backend.storage.models import CANCELLED, FAILED, QUEUED, RUNNING, Job, utcnow

from .connections import engine
from .leases import MAX_ATTEMPTS, worker_lost_error

CANCELLED_ERROR = {"error_code": "cancelled", "error": "Cancelled by its owner."}  # as backend.storage.repo
PROGRESS_EVERY_S = 0.5  # at most this often a progress-only update is written and published

Publish = Callable[[Job], None]


class JobCancelled(Exception):
    """The owner cancelled the job; raised at a stage boundary."""


class JobLost(Exception):
    """The job no longer belongs to this message (deleted, or handed to another worker)."""


def claim(settings: Settings, job_id: str, task_id: str, publish: Publish) -> Job | None:
    """Start an attempt at ``job_id`` for message ``task_id`` (the caller holds the lease).

    Returns the running Job (detached), or None when the message must be dropped (the job is gone, finished,
    cancelled, belongs to a newer message, or has used up its attempts — those last two end the job here).
    """
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
            now = utcnow()
            values = dict(
                state=RUNNING,
                stage=DECODE,
                progress=0.0,
                started_at=now,
                stage_started_at=now,
                stage_estimates=repo.recent_stage_seconds(session, PIPELINE_STAGES) or None,
                attempts=Job.attempts + 1,
                error=None,
                error_code=None,
            )
        if not session.execute(update(Job).where(*guard).values(**values)).rowcount:
            return None
    with session_scope(engine(settings)) as session:
        job = session.get(Job, job_id)
    if job is not None:
        publish(job)
    return job if job is not None and job.state == RUNNING else None


class JobRun:
    """One attempt at one claimed job by this process: the conditional writes and the stage clock.

    ``timings`` holds seconds per stage (and ``total`` once finished), rounded to 0.1 ms.
    """

    def __init__(self, settings: Settings, job_id: str, task_id: str, publish: Publish):
        self.settings = settings
        self.job_id = job_id
        self.task_id = task_id
        self.publish = publish
        self.stage: str | None = DECODE  # claim() recorded it
        self.stage_started = time.monotonic()
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.last_progress_write = 0.0

    # --- database -----------------------------------------------------------------------------------------

    def _update(self, **values) -> None:
        """Apply ``values`` to the job if it still belongs to this message, then publish it.

        Raises JobLost when it does not (deleted, or taken over after this process lost its lease).
        """
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
            self.publish(job)

    def _cancel_requested(self) -> bool:
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
        """A stage boundary: honour a cancel request (``JobCancelled``), then record the new stage."""
        if self._cancel_requested():
            raise JobCancelled(self.job_id)
        self._close_stage()
        self.stage = stage
        self.stage_started = time.monotonic()
        self.last_progress_write = time.monotonic()
        self._update(stage=stage, progress=0.0, stage_started_at=utcnow())

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
        self._close_stage()
        self.timings["total"] = round(time.monotonic() - self.started, 4)
        self._update(
            state=state,
            stage=None,
            stage_started_at=None,
            finished_at=utcnow(),
            timings=dict(self.timings),
            **values,
        )


def job_gone(settings: Settings, job_id: str) -> bool:
    """Whether the job's row no longer exists (deleted by its owner)."""
    with session_scope(engine(settings)) as session:
        return session.get(Job, job_id) is None
