"""The reaper and the lease keeper (``backend.jobs.leases``) on a real Redis and SQLite, without Celery: when a
running job counts as lost. Time is moved by ageing the reaper's memory (Redis time of a first absence), since
the grace is longer than a unit test should wait."""

from __future__ import annotations

import pytest
import redis

from backend.jobs import leases
from backend.jobs.connections import engine
from backend.jobs.leases import LEASE_MISSING_GRACE_S, MISSING_KEY, LeaseKeeper, lease_key, reap
from backend.storage.db import session_scope
from backend.storage.models import QUEUED, RUNNING, Job, User

TASK = "task-1"


@pytest.fixture
def r(settings):
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def keeper(settings):
    keeper = LeaseKeeper(settings, "host-a")  # not started: the test calls refresh() as its rounds
    yield keeper
    keeper.redis.close()


def _running_job(settings) -> str:
    with session_scope(engine(settings)) as db:
        user = User()
        db.add(user)
        db.flush()
        job = Job(user_id=user.id, state=RUNNING, celery_task_id=TASK, attempts=1)
        db.add(job)
        db.flush()
        return job.id


def _state(settings, job_id) -> str:
    with session_scope(engine(settings)) as db:
        return db.get(Job, job_id).state


def _time_passes(r, seconds: float) -> None:
    """Every absence the reaper remembers began ``seconds`` earlier."""
    for job_id, first in r.hgetall(MISSING_KEY).items():
        r.hset(MISSING_KEY, job_id, str(float(first) - seconds))


def test_a_lease_missing_through_the_grace_puts_its_job_back_in_the_queue(settings, r, keeper):
    job_id = _running_job(settings)
    assert keeper.hold(job_id, TASK)
    keeper.drop(job_id)  # gone, and nobody refreshes it (its worker died)
    assert reap(settings) == [] and job_id in r.hgetall(MISSING_KEY)  # first seen missing: noted only
    _time_passes(r, LEASE_MISSING_GRACE_S)
    assert reap(settings) == [job_id]
    assert _state(settings, job_id) == QUEUED


def test_a_lease_its_keeper_took_back_counts_afresh_when_it_vanishes_again(settings, r, keeper):
    job_id = _running_job(settings)
    assert keeper.hold(job_id, TASK)
    r.delete(lease_key(job_id))  # gone for a moment (Redis lost it) ...
    assert reap(settings) == []  # ... and a reaper round saw that
    keeper.refresh()  # the keeper takes it back
    assert r.get(lease_key(job_id)) == leases.lease_value(keeper.holder, TASK)
    # No reaper round sees it back (rounds wait on the dispatcher lock); long after, it vanishes again.
    _time_passes(r, 2 * LEASE_MISSING_GRACE_S)
    r.delete(lease_key(job_id))
    assert reap(settings) == []  # missing since just now, not since the first absence
    assert _state(settings, job_id) == RUNNING
