"""Calls that wait for the dispatcher lock while a round runs share one round after it: several workers
finishing jobs together run two rounds, not one each in turn. A call is only ever spared a round by one that
started after it, so nothing it committed is left waiting. Real Redis (lock, counters, broker) and SQLite."""

from __future__ import annotations

import threading
import time

import redis

from backend.jobs import dispatch
from backend.settings import Settings
from backend.storage.db import make_engine, session_scope
from backend.storage.models import QUEUED, Job, User

WAITERS = 3


def _queued_job(settings: Settings) -> str:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as db:
        user = User()
        db.add(user)
        db.flush()
        job = Job(user_id=user.id, state=QUEUED)
        db.add(job)
        db.flush()
        job_id = job.id
    engine.dispose()
    return job_id


def _dispatched(settings: Settings, job_id: str) -> bool:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as db:
        handed_out = db.get(Job, job_id).dispatched_at is not None
    engine.dispose()
    return handed_out


def _waiting_for_lock(client: redis.Redis, count: int) -> bool:
    """Whether ``count`` more calls have read their ticket (they then only wait for the lock): each call reads
    ``STARTED_KEY`` once before it waits, which Redis counts in its command statistics."""
    return client.info("commandstats").get("cmdstat_get", {}).get("calls", 0) >= count


def test_calls_waiting_during_a_round_share_one_round_after_it_and_lose_nothing(settings, monkeypatch):
    client = redis.Redis.from_url(settings.redis_url)
    rounds: list[str] = []
    first_inside, release_first = threading.Event(), threading.Event()
    real_hand_out = dispatch._hand_out

    def counted_hand_out(s):
        rounds.append(threading.current_thread().name)
        handed = real_hand_out(s)
        if len(rounds) == 1:  # the first round has read the database: it holds there
            first_inside.set()
            release_first.wait(30)
        return handed

    monkeypatch.setattr(dispatch, "_hand_out", counted_hand_out)
    started_before = int(client.get(dispatch.STARTED_KEY) or 0)
    first = threading.Thread(target=dispatch.pump, args=(settings,), name="first")
    first.start()
    assert first_inside.wait(30)
    # Committed after the first round read the database: only a round that starts later can hand it out.
    late_job = _queued_job(settings)
    client.config_resetstat()
    waiters = [
        threading.Thread(target=dispatch.pump, args=(settings,), name=f"waiter-{i}") for i in range(WAITERS)
    ]
    for waiter in waiters:
        waiter.start()
    deadline = time.monotonic() + 30
    while not _waiting_for_lock(client, WAITERS):
        assert time.monotonic() < deadline, "the waiting calls did not start"
        time.sleep(0.01)
    release_first.set()
    for thread in [first, *waiters]:
        thread.join(60)
        assert not thread.is_alive()
    assert len(rounds) == 2, rounds  # the first, then one for all three waiters (not one each)
    assert rounds[1].startswith("waiter-")
    assert _dispatched(settings, late_job)  # the shared round handed out what was committed before it
    assert int(client.get(dispatch.COVERED_KEY)) == started_before + 2  # both rounds finished their work
    client.close()


def test_a_call_after_the_last_round_gets_a_round_of_its_own(settings):
    dispatch.pump(settings)
    job_id = _queued_job(settings)
    assert dispatch.pump(settings) is not None  # nothing covered it: it ran a round
    assert _dispatched(settings, job_id)
