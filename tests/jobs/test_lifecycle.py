"""The running job's state machine (``backend.jobs.lifecycle``) on a real SQLite database, without Redis or
Celery: claim, exactly-once conditional updates, cancel at a stage boundary, duplicate and stale delivery."""

from __future__ import annotations

import pytest

from backend.jobs import lifecycle, work
from backend.jobs.leases import MAX_ATTEMPTS
from backend.jobs.lifecycle import JobCancelled, JobLost, JobRun, claim
from backend.segmentation.stages import DECODE, MASKS, MODEL, SAVING
from backend.settings import Settings
from backend.storage import repo
from backend.storage.db import migrate, session_scope
from backend.storage.models import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job, User

TASK = "task-1"


@pytest.fixture
def settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'maskweb.db'}"
    migrate(url)
    return Settings(data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
def published():
    """What the state machine handed to ``publish``: (state, stage, progress) per change, in order."""
    return []


@pytest.fixture
def publish(published):
    return lambda job: published.append((job.state, job.stage, job.progress))


def _queued_job(settings, task_id=TASK, **values) -> str:
    with session_scope(lifecycle.engine(settings)) as db:
        user = User()
        db.add(user)
        db.flush()
        job = Job(user_id=user.id, state=QUEUED, celery_task_id=task_id, **values)
        db.add(job)
        db.flush()
        return job.id


def _row(settings, job_id) -> Job:
    with session_scope(lifecycle.engine(settings)) as db:
        return db.get(Job, job_id)


def _claimed(settings, publish) -> tuple[str, JobRun]:
    job_id = _queued_job(settings)
    assert claim(settings, job_id, TASK, publish) is not None
    return job_id, JobRun(settings, job_id, TASK, publish)


def test_claim_starts_an_attempt_in_stage_decode(settings, publish, published):
    job_id = _queued_job(settings)
    job = claim(settings, job_id, TASK, publish)
    assert (job.state, job.stage, job.attempts) == (RUNNING, DECODE, 1)
    assert _row(settings, job_id).started_at is not None
    assert published == [(RUNNING, DECODE, 0.0)]


def test_every_write_of_a_job_raises_its_revision_so_clients_can_order_its_events(settings):
    revisions = []
    job_id = _queued_job(settings)
    revisions.append(_row(settings, job_id).revision)
    job = claim(settings, job_id, TASK, lambda job: None)  # an update() statement
    revisions.append(job.revision)
    run = JobRun(settings, job_id, TASK, lambda job: None)
    run.progress(MODEL, 0.0)
    revisions.append(_row(settings, job_id).revision)
    with session_scope(lifecycle.engine(settings)) as db:  # an ORM flush
        db.get(Job, job_id).cancel_requested = True
    revisions.append(_row(settings, job_id).revision)
    run.finish(DONE, progress=1.0)
    revisions.append(_row(settings, job_id).revision)
    assert revisions[0] == 0 and all(a < b for a, b in zip(revisions, revisions[1:], strict=False))
    assert _row(settings, job_id).as_dict()["revision"] == revisions[-1]


def test_a_stale_message_is_dropped_and_changes_nothing(settings, publish, published):
    job_id = _queued_job(settings, task_id="newer")
    assert claim(settings, job_id, "older", publish) is None
    row = _row(settings, job_id)
    assert (row.state, row.attempts) == (QUEUED, 0) and published == []


def test_a_duplicate_message_of_a_finished_job_is_dropped(settings, publish, published):
    job_id, run = _claimed(settings, publish)
    run.finish(DONE, progress=1.0)
    published.clear()
    assert claim(settings, job_id, TASK, publish) is None
    row = _row(settings, job_id)
    assert (row.state, row.attempts) == (DONE, 1) and published == []


def test_a_redelivered_message_of_a_running_job_counts_another_attempt(settings, publish):
    job_id, _ = _claimed(settings, publish)  # the first worker died here
    job = claim(settings, job_id, TASK, publish)
    assert (job.state, job.attempts) == (RUNNING, 2)


def test_a_job_that_used_up_its_attempts_fails_with_a_reason(settings, publish, published):
    job_id = _queued_job(settings, attempts=MAX_ATTEMPTS)
    assert claim(settings, job_id, TASK, publish) is None
    row = _row(settings, job_id)
    assert (row.state, row.error_code, row.stage) == (FAILED, "worker_lost", None)
    assert row.finished_at is not None and published == [(FAILED, None, 0.0)]


def test_a_job_cancelled_while_queued_ends_cancelled_at_claim(settings, publish):
    job_id = _queued_job(settings, cancel_requested=True)
    assert claim(settings, job_id, TASK, publish) is None
    row = _row(settings, job_id)
    assert (row.state, row.error_code, row.attempts) == (CANCELLED, "cancelled", 0)


def test_stages_progress_and_finish_are_written_and_published_in_order(settings, publish, published):
    job_id, run = _claimed(settings, publish)
    published.clear()
    run.progress(MODEL, 0.0)  # a new stage: a boundary, written at once
    run.progress(MODEL, 0.3)  # within PROGRESS_EVERY_S of the boundary: throttled
    run.progress(MODEL, 1.0)  # a stage's end is always written
    run.progress(MASKS, 0.0)
    run.progress(SAVING, 0.0)
    run.finish(DONE, progress=1.0, instance_count=2)
    assert published == [
        (RUNNING, MODEL, 0.0),
        (RUNNING, MODEL, 1.0),
        (RUNNING, MASKS, 0.0),
        (RUNNING, SAVING, 0.0),
        (DONE, None, 1.0),
    ]
    row = _row(settings, job_id)
    assert (row.state, row.instance_count) == (DONE, 2)
    assert set(row.timings) == {DECODE, MODEL, MASKS, SAVING, "total"}
    assert all(seconds >= 0 for seconds in row.timings.values())


def test_a_cancel_request_stops_the_job_at_the_next_stage_boundary(settings, publish, published):
    job_id, run = _claimed(settings, publish)
    with session_scope(lifecycle.engine(settings)) as db:
        assert repo.cancel_job(db, job_id) == "requested"  # running: only flagged
    run.progress(DECODE, 0.5)  # not a boundary: the stage goes on
    with pytest.raises(JobCancelled):
        run.progress(MODEL, 0.0)
    assert _row(settings, job_id).stage == DECODE  # the refused stage was never entered
    run.finish(CANCELLED, **lifecycle.CANCELLED_ERROR)
    row = _row(settings, job_id)
    assert (row.state, row.error_code) == (CANCELLED, "cancelled")


def test_an_attempt_that_lost_its_job_to_another_message_writes_nothing(settings, publish, published):
    job_id, run = _claimed(settings, publish)
    with session_scope(lifecycle.engine(settings)) as db:  # the reaper handed the job to a new message
        db.get(Job, job_id).celery_task_id = "task-2"
    published.clear()
    with pytest.raises(JobLost):
        run.finish(DONE, progress=1.0, instance_count=7)
    row = _row(settings, job_id)
    assert (row.state, row.instance_count, row.finished_at) == (RUNNING, None, None) and published == []


def test_each_job_ends_exactly_once(settings, publish):
    job_id, run = _claimed(settings, publish)
    run.finish(FAILED, error_code="internal", error="boom")
    with pytest.raises(JobLost):
        run.finish(DONE, progress=1.0)
    assert _row(settings, job_id).state == FAILED


def test_a_deleted_job_is_lost_at_the_next_boundary(settings, publish):
    job_id, run = _claimed(settings, publish)
    with session_scope(lifecycle.engine(settings)) as db:
        db.delete(db.get(Job, job_id))
    with pytest.raises(JobLost):
        run.progress(MODEL, 0.0)
    assert lifecycle.job_gone(settings, job_id)


class _Heartbeat:
    """Leases as a fake: ``held_elsewhere`` lists jobs another live worker holds."""

    def __init__(self, held_elsewhere=()):
        self.held_elsewhere = set(held_elsewhere)
        self.holding: set[str] = set()

    def hold(self, job_id, task_id):
        if job_id in self.held_elsewhere:
            return False
        self.holding.add(job_id)
        return True

    def drop(self, job_id):
        self.holding.discard(job_id)


def test_a_message_for_a_job_another_live_worker_holds_is_dropped_untouched(settings):
    job_id = _queued_job(settings)
    heartbeat = _Heartbeat(held_elsewhere={job_id})
    assert work.run_job(settings, segmenter=None, heartbeat=heartbeat, job_id=job_id, task_id=TASK) is None
    row = _row(settings, job_id)
    assert (row.state, row.attempts) == (QUEUED, 0)


def test_a_stale_message_releases_its_lease(settings):
    job_id = _queued_job(settings, task_id="newer")
    heartbeat = _Heartbeat()
    assert work.run_job(settings, segmenter=None, heartbeat=heartbeat, job_id=job_id, task_id="older") is None
    assert heartbeat.holding == set() and _row(settings, job_id).state == QUEUED


def test_the_stage_clock_starts_at_claim_with_recent_durations_and_restarts_at_each_stage(settings, publish):
    # A finished job measured its stages: the next claim expects the same.
    finished_id, run = _claimed(settings, publish)
    run.enter_stage(MODEL)
    run.finish(DONE, progress=1.0)
    measured = _row(settings, finished_id).timings

    job_id = _queued_job(settings, task_id="task-2")
    claim(settings, job_id, "task-2", publish)
    row = _row(settings, job_id)
    assert row.stage_estimates == {stage: measured[stage] for stage in (DECODE, MODEL)}
    first = row.stage_started_at
    assert first is not None and row.as_dict()["stage_elapsed_s"] >= 0

    run = JobRun(settings, job_id, "task-2", publish)
    run.enter_stage(MODEL)
    assert _row(settings, job_id).stage_started_at >= first
    run.finish(DONE, progress=1.0)
    done = _row(settings, job_id)
    assert done.stage_started_at is None and done.as_dict()["stage_elapsed_s"] is None
