"""Job.as_dict (the API's and the events' JSON) and timezone handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from backend.storage.db import session_scope
from backend.storage.models import DONE, QUEUED, RUNNING, Job, User, iso

KEYS = {
    "id", "state", "stage", "progress", "queue_position", "filename", "width", "height", "created_at",
    "started_at", "finished_at", "error", "error_code", "instance_count", "classes", "timings",
    "stage_estimates", "stage_elapsed_s", "cancel_requested", "revision", "urls",
}  # fmt: skip


def test_times_come_back_aware_utc(engine):
    plus_two = timezone(timedelta(hours=2))
    started = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=plus_two)
    with session_scope(engine) as db:
        user = User()
        db.add(user)
        db.flush()
        job = Job(user_id=user.id, state=RUNNING, started_at=started)
        db.add(job)
    with session_scope(engine) as db:
        loaded = db.get(Job, job.id)
        assert loaded.started_at == started
        assert loaded.started_at.tzinfo is not None and loaded.started_at.utcoffset() == timedelta(0)
        assert loaded.as_dict()["started_at"] == "2026-05-01T10:00:00.123456Z"
        assert loaded.created_at.tzinfo is not None


def test_as_dict_shape_and_urls():
    job = Job(id="a" * 32, user_id="b" * 32, state=QUEUED, stage="waiting", progress=0.0, filename="x.jpg",
              created_at=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    queued = job.as_dict(3)
    assert set(queued) == KEYS
    assert queued["queue_position"] == 3
    assert queued["urls"] == {
        "image": f"/api/jobs/{'a' * 32}/image",
        "thumbnail": f"/api/jobs/{'a' * 32}/thumbnail",
        "overlay": None,
        "result": None,
    }
    job.state, job.stage, job.classes = DONE, None, ["cat"]
    done = job.as_dict(3, urls_base="/api/shared/tok")
    assert done["queue_position"] is None  # only queued jobs have a position
    assert done["urls"]["overlay"] == "/api/shared/tok/overlay"
    assert done["urls"]["result"] == "/api/shared/tok/result"
    assert done["classes"] == ["cat"]


def test_iso_formats_utc_with_z():
    assert iso(None) is None
    assert iso(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"


def test_a_job_changed_through_the_orm_knows_its_new_revision_after_its_session_closed(engine):
    with session_scope(engine) as db:
        user = User()
        db.add(user)
        db.flush()
        job = Job(user_id=user.id, state=QUEUED)
        db.add(job)
    with session_scope(engine) as db:
        job = db.get(Job, job.id)
        before = job.revision
        job.cancel_requested = True
    # detached now: the value the flush wrote is already here, not an expired attribute to reload
    assert job.as_dict()["revision"] == before + 1
