"""The fair order: round-robin across users, users with work in flight go later, positions match dispatch."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from backend.storage import queue_order
from backend.storage.db import session_scope
from backend.storage.models import CANCELLED, DONE, QUEUED, RUNNING, Job, User
from backend.storage.queue_order import fair_order, next_to_dispatch, queue_positions

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _add(db, user, n, start, state=QUEUED, dispatched=False):
    jobs = []
    for i in range(n):
        created = T0 + timedelta(seconds=start + i)
        job = Job(
            user_id=user,
            state=state,
            stage="waiting" if state == QUEUED else None,
            created_at=created,
            dispatched_at=created if dispatched or state == RUNNING else None,
        )
        db.add(job)
        jobs.append(job)
    db.flush()
    return [j.id for j in jobs]


def _users(db, *names):
    ids = []
    for _ in names:
        user = User()
        db.add(user)
        db.flush()
        ids.append(user.id)
    return ids


def test_one_users_hundred_images_do_not_hold_back_anothers_one(engine):
    with session_scope(engine) as db:
        alice, bob = _users(db, "alice", "bob")
        alice_jobs = _add(db, alice, 100, start=0)
        (bob_job,) = _add(db, bob, 1, start=500)
        order = fair_order(db)
        positions = queue_positions(db)
    assert order[:3] == [alice_jobs[0], bob_job, alice_jobs[1]]
    assert positions[bob_job] == 2
    assert order[3:] == alice_jobs[2:]
    assert sorted(positions.values()) == list(range(1, 102))


def test_round_robin_across_three_users_in_creation_order_within_a_round(engine):
    with session_scope(engine) as db:
        a, b, c = _users(db, "a", "b", "c")
        ja = _add(db, a, 3, start=0)
        jb = _add(db, b, 2, start=10)
        jc = _add(db, c, 1, start=20)
        assert fair_order(db) == [ja[0], jb[0], jc[0], ja[1], jb[1], ja[2]]


def test_users_with_jobs_in_flight_go_after_users_without(engine):
    with session_scope(engine) as db:
        busy, idle = _users(db, "busy", "idle")
        running = _add(db, busy, 1, start=0, state=RUNNING)
        dispatched = _add(db, busy, 1, start=1, dispatched=True)
        busy_waiting = _add(db, busy, 2, start=2)
        idle_waiting = _add(db, idle, 2, start=50)
        _add(db, idle, 3, start=60, state=DONE)  # finished jobs count for nothing
        _add(db, idle, 1, start=70, state=CANCELLED)
        positions = queue_positions(db)
        assert running[0] not in positions
        # dispatched-but-not-started first; then idle's two (rounds 0, 1) tie-break with busy's (rounds 2, 3)
        assert positions[dispatched[0]] == 1
        assert [positions[j] for j in idle_waiting] == [2, 3]
        assert [positions[j] for j in busy_waiting] == [4, 5]


def test_next_to_dispatch_follows_the_order_and_the_per_user_cap(engine):
    with session_scope(engine) as db:
        a, b = _users(db, "a", "b")
        ja = _add(db, a, 5, start=0)
        jb = _add(db, b, 1, start=100)
        _add(db, b, 1, start=0, state=RUNNING)
        picked = next_to_dispatch(db, max_inflight_per_user=2)
        assert picked == [ja[0], ja[1], jb[0]]  # b already has one running: round 1 for both
        assert next_to_dispatch(db, max_inflight_per_user=2, limit=1) == [ja[0]]
        order = fair_order(db)
        assert [j for j in order if j in picked] == picked  # the same order as positions


def test_the_active_jobs_are_read_in_chunks_with_a_pause_after_each(engine, monkeypatch):
    monkeypatch.setattr(queue_order, "READ_CHUNK", 3)
    with session_scope(engine) as db:
        (a,) = _users(db, "a")
        waiting = _add(db, a, 6, start=0)
        _add(db, a, 1, start=10, state=RUNNING)
        _add(db, a, 2, start=20, state=DONE)
        pauses = []
        queue = queue_order.read_queue(db, pause=lambda: pauses.append(len(pauses)))
    assert [job_id for job_id, _ in queue.waiting] == waiting  # every waiting job, oldest first
    assert queue.running == {a: 1} and queue.dispatched == []  # the running one counted, nothing else
    assert len(pauses) == 3  # 7 rows, 3 at a time


# The rules as the module docstring states them, computed the plain way (whole rows, timestamps compared):
# what the database-sorted, one-pass implementation must agree with on any queue.
def _by_the_rules(db, max_inflight: int, limit: int):
    active = db.scalars(select(Job).where(Job.state.in_([QUEUED, RUNNING]))).all()
    in_flight = Counter(j.user_id for j in active if j.state == RUNNING or j.dispatched_at is not None)
    waiting = sorted((j for j in active if j.state == QUEUED and j.dispatched_at is None),
                     key=lambda j: (j.created_at, j.id))  # fmt: skip
    index: Counter[str] = Counter()
    keyed = []
    for j in waiting:
        keyed.append(((in_flight[j.user_id] + index[j.user_id], j.created_at, j.id), j))
        index[j.user_id] += 1
    order = [j for _, j in sorted(keyed, key=lambda pair: pair[0])]
    dispatched = sorted((j for j in active if j.state == QUEUED and j.dispatched_at is not None),
                        key=lambda j: (j.dispatched_at, j.created_at, j.id))  # fmt: skip
    positions = {j.id: p for p, j in enumerate(dispatched + order, start=1)}
    picked, counts = [], Counter(in_flight)
    for j in order:
        if len(picked) < limit and counts[j.user_id] < max_inflight:
            counts[j.user_id] += 1
            picked.append(j.id)
    return [j.id for j in order], positions, picked


_jobs = st.lists(
    st.tuples(
        st.integers(0, 3),  # user
        st.integers(0, 6),  # created, in seconds: ties are likely, the id decides them
        st.sampled_from([QUEUED, QUEUED, QUEUED, RUNNING, DONE]),
        st.one_of(st.none(), st.integers(0, 4)),  # dispatched, in seconds (running jobs always are)
    ),
    max_size=25,
)


@given(jobs=_jobs, max_inflight=st.integers(1, 3), limit=st.integers(1, 6))
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_order_positions_and_picks_are_the_rules_on_any_queue(engine, jobs, max_inflight, limit):
    with session_scope(engine) as db:
        db.execute(delete(Job))
        users = _users(db, *"abcd")
        for user, created, state, dispatched in jobs:
            if state == RUNNING and dispatched is None:
                dispatched = created
            db.add(Job(user_id=users[user], state=state, created_at=T0 + timedelta(seconds=created),
                       dispatched_at=None if dispatched is None else T0 + timedelta(seconds=dispatched)))  # fmt: skip
        db.flush()
        order, positions, picked = _by_the_rules(db, max_inflight, limit)
        assert fair_order(db) == order
        assert queue_positions(db) == positions
        assert next_to_dispatch(db, max_inflight, limit) == picked
        # A dispatcher round's positions after its hand-out, without reading again, are what a new read gives
        queue = queue_order.read_queue(db)
        db.execute(update(Job).where(Job.id.in_(picked)).values(dispatched_at=T0 + timedelta(seconds=9)))
        assert queue_order.positions_of(queue.handed_out(picked)) == queue_positions(db)
