"""Job state changes, the gallery query and share links, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from backend.storage import repo
from backend.storage.db import make_engine, migrate, session_scope
from backend.storage.models import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job, ShareLink, User

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _user(db) -> str:
    user = User()
    db.add(user)
    db.flush()
    return user.id


def _job(db, user_id, state=QUEUED, seconds=0, classes=None) -> Job:
    job = Job(user_id=user_id, state=state, created_at=T0 + timedelta(seconds=seconds), classes=classes)
    db.add(job)
    db.flush()
    return job


@pytest.mark.parametrize(
    ("state", "outcome", "final_state", "requested"),
    [
        (QUEUED, "cancelled", CANCELLED, True),
        (RUNNING, "requested", RUNNING, True),
        (DONE, "finished", DONE, False),
        (FAILED, "finished", FAILED, False),
        (CANCELLED, "finished", CANCELLED, False),
    ],
)
def test_cancel_job(engine, state, outcome, final_state, requested):
    with session_scope(engine) as db:
        job = _job(db, _user(db), state=state)
        assert repo.cancel_job(db, job.id) == outcome
    with session_scope(engine) as db:
        job = db.get(Job, job.id)
        assert job.state == final_state
        assert job.cancel_requested is requested
        if outcome == "cancelled":
            assert job.stage is None and job.finished_at is not None


def test_gallery_pages_newest_first_with_a_stable_cursor(engine):
    with session_scope(engine) as db:
        me, other = _user(db), _user(db)
        mine = [_job(db, me, seconds=i).id for i in range(7)]
        _job(db, other, seconds=100)
        # Two jobs with the same created_at: the id breaks the tie, and neither is lost at a page boundary.
        same_a = _job(db, me, seconds=3).id
        mine.append(same_a)
    expected = [j.id for j in sorted(_all(engine, me), key=lambda j: (j.created_at, j.id), reverse=True)]
    seen, cursor = [], None
    with session_scope(engine) as db:
        while True:
            page = repo.gallery_page(db, me, cursor=cursor, limit=3)
            seen += [j.id for j in page.jobs]
            assert len(page.jobs) <= 3
            cursor = page.next_cursor
            if cursor is None:
                break
            # a job created meanwhile does not shift the next pages
            _job(db, me, seconds=1000 + len(seen))
    assert seen == expected
    assert len(seen) == 8


def _all(engine, user_id):
    with session_scope(engine) as db:
        return list(db.query(Job).filter(Job.user_id == user_id))


def test_gallery_filters_by_class_name_prefix_in_any_case(engine):
    with session_scope(engine) as db:
        me = _user(db)
        person = _job(db, me, DONE, 1, ["dog", "person"]).id
        light = _job(db, me, DONE, 2, ["traffic light"]).id
        item = _job(db, me, DONE, 3, ["personal_item"]).id  # a LIKE wildcard in the name
        _job(db, me, QUEUED, 4, None)

        def ids(prefix):
            return [j.id for j in repo.gallery_page(db, me, class_name=prefix).jobs]

        assert ids("person") == [item, person]  # newest first
        assert ids("Pers") == [item, person]
        assert ids("traffic") == [light]
        assert ids("traffic light") == [light]
        assert ids("DOG") == [person]
        assert ids("light") == []  # a prefix of the name, not any part of it
        assert ids("rson") == []
        assert ids("person%") == []
        assert ids("personal_ite_") == []
        assert ids("personal_ite") == [item]


def test_class_counts_are_the_classes_of_finished_results_most_frequent_first(engine):
    with session_scope(engine) as db:
        me, other = _user(db), _user(db)
        _job(db, me, DONE, 1, ["dog", "person"])
        _job(db, me, DONE, 2, ["person"])
        _job(db, me, DONE, 3, [])
        _job(db, me, QUEUED, 4, None)
        _job(db, other, DONE, 5, ["zebra"])
        assert repo.class_counts(db, me) == [("person", 2), ("dog", 1)]


def test_bad_cursor_is_refused():
    with pytest.raises(repo.BadCursor):
        repo.decode_cursor("not-a-cursor")


def test_share_links_resolve_until_revoked(engine):
    with session_scope(engine) as db:
        job = _job(db, _user(db), DONE)
        first = repo.create_share_link(db, job)
        second = repo.create_share_link(db, job)
        assert len(first) >= 43  # 32 random bytes, base64url
        assert first != second
        assert repo.shared_job(db, first).id == job.id
        assert repo.shared_job(db, "nope") is None
        assert repo.revoke_share_links(db, job.id) == 2
    with session_scope(engine) as db:
        assert repo.shared_job(db, first) is None
        assert repo.shared_job(db, second) is None
        assert repo.share_link(db, first).revoked_at is not None
        # the database holds digests only: a copy of it opens no link
        stored = {link.token_sha256 for link in db.scalars(select(ShareLink))}
        assert stored == {hashlib.sha256(t.encode()).hexdigest() for t in (first, second)}


def test_owned_job_hides_other_users_jobs(engine):
    with session_scope(engine) as db:
        me, other = _user(db), _user(db)
        job = _job(db, me)
        assert repo.owned_job(db, job.id, me).id == job.id
        assert repo.owned_job(db, job.id, other) is None
        assert repo.owned_job(db, job.id, None) is None


def test_orphaned_job_files_are_removed_once_old(engine, tmp_path):
    import os

    from PIL import Image

    from backend.storage.files import LocalFileStore
    from backend.storage.models import new_id

    data = LocalFileStore(tmp_path)
    with session_scope(engine) as db:
        kept = _job(db, _user(db)).id
    orphan_old, orphan_new = new_id(), new_id()
    for job_id in (kept, orphan_old, orphan_new):
        data.save_original(job_id, Image.new("RGB", (4, 4)))
    long_ago = 1_000_000_000
    for job_id in (kept, orphan_old):
        os.utime(data.job_dir(job_id), (long_ago, long_ago))
    with session_scope(engine) as db:
        assert repo.remove_orphan_files(db, data, min_age_s=3600) == [orphan_old]
    assert sorted(data.job_ages()) == sorted([kept, orphan_new])


def test_recent_stage_seconds_are_medians_of_the_last_finished_jobs(engine):
    stages = ("decode", "model", "masks")
    with session_scope(engine) as db:
        me = _user(db)
        assert repo.recent_stage_seconds(db, stages) == {}
        for n, (model, masks) in enumerate([(4.0, 1.0), (6.0, None), (5.0, 3.0), (100.0, 2.0)]):
            job = _job(db, me, DONE, n)
            job.finished_at = T0 + timedelta(seconds=n)
            job.timings = {"decode": 0.5, "model": model, **({"masks": masks} if masks is not None else {})}
        _job(db, me, QUEUED, 9).timings = {"model": 999.0}  # not finished: not a measurement
        db.flush()
        assert repo.recent_stage_seconds(db, stages) == {"decode": 0.5, "model": 5.5, "masks": 2.0}
        # Only the most recent ones count.
        assert repo.recent_stage_seconds(db, stages, limit=2) == {"decode": 0.5, "model": 52.5, "masks": 2.5}


def test_recent_stage_seconds_reads_an_index_not_the_whole_table(tmp_path):
    """Every claim asks for the latest done jobs' timings: SQLite must answer from ix_jobs_state_finished
    instead of scanning and sorting every job."""
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    migrate(url)  # the schema as the migrations build it, index included
    engine = make_engine(url)
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append((a[2], a[3])))
    with session_scope(engine) as db:
        repo.recent_stage_seconds(db, ("model",))
    sql, params = next((s, p) for s, p in statements if "timings" in s and "ORDER BY" in s)
    with engine.connect() as conn:
        plan = " | ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))
    engine.dispose()
    assert "ix_jobs_state_finished" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
