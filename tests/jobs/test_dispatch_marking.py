"""Handing out jobs marks them in one statement: only jobs still waiting get a task id, each its own, and the
answer says which, in the order chosen. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import databases

from backend.jobs import dispatch
from backend.storage.db import session_scope
from backend.storage.models import CANCELLED, QUEUED, Job, User

postgres_url, database_url, engine = databases.postgres_url, databases.database_url, databases.engine

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_only_jobs_still_waiting_are_marked_each_with_its_own_task_id(engine):
    with session_scope(engine) as db:
        user = User()
        db.add(user)
        db.flush()

        def job(state=QUEUED, task_id=None):
            row = Job(user_id=user.id, state=state, created_at=T0, celery_task_id=task_id)
            if task_id:
                row.dispatched_at = T0
            db.add(row)
            db.flush()
            return row.id

        first, cancelled, handed_elsewhere, last = job(), job(CANCELLED), job(task_id="earlier-round"), job()
    now = T0 + timedelta(minutes=1)
    with session_scope(engine) as db:
        marked = dispatch._mark_dispatched(db, [last, cancelled, handed_elsewhere, first], now)
    assert [job_id for job_id, _ in marked] == [last, first]  # the order chosen, only the waiting ones
    assert len({task_id for _, task_id in marked}) == 2
    with session_scope(engine) as db:
        rows = {row.id: row for row in db.query(Job)}
        for job_id, task_id in marked:
            assert rows[job_id].celery_task_id == task_id
            assert rows[job_id].dispatched_at == now
        assert rows[handed_elsewhere].celery_task_id == "earlier-round"
        assert rows[cancelled].dispatched_at is None and rows[cancelled].celery_task_id is None
