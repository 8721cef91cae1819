"""The fair order of the queue: the one definition used for queue positions AND for dispatching.

H5's dispatcher (``backend.jobs.dispatch``) must take jobs in ``fair_order`` (``next_to_dispatch`` does
exactly that with the per-user in-flight cap), and every queue position shown anywhere comes from
``queue_positions``, so what a user is told is the order in which work is actually handed out.

Definitions (all jobs in state ``queued`` or ``running``):

- *in flight*: handed to Celery (``dispatched_at`` set) and not finished: queued-and-dispatched, or running.
- *waiting*: queued with ``dispatched_at`` NULL (held back in the database).
- A waiting job's *round* is (the number of its user's jobs in flight) + (its index among its user's waiting
  jobs, oldest first). Waiting jobs are ordered by (round, created_at, id): round-robin across users, and a
  user with work already in flight goes after users with none. One user's hundred images therefore hold back
  another user's single image by at most one job per user ahead of it.
- Queue positions (1-based): first the dispatched-but-not-started jobs, in dispatch order, then the waiting
  jobs in fair order. Running and finished jobs have no position.

Pure storage logic: no Celery, no Redis.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .models import QUEUED, RUNNING, Job


@dataclass(frozen=True)
class QueueEntry:
    """The columns the order needs, without loading whole rows."""

    id: str
    user_id: str
    state: str
    created_at: datetime
    dispatched_at: datetime | None


READ_CHUNK = 2000  # rows ``active_entries`` reads between two calls of its ``pause`` (about 8 ms of CPU)


def active_entries(session: Session, pause: Callable[[], None] | None = None) -> list[QueueEntry]:
    """Every queued or running job's ordering columns: one indexed read (``ix_jobs_state_dispatched``),
    fetched ``READ_CHUNK`` rows at a time with ``pause()`` called after each chunk (the dispatcher lets its
    event loop run there: 10,000 rows are about 40 ms of CPU)."""
    result = session.execute(
        select(Job.id, Job.user_id, Job.state, Job.created_at, Job.dispatched_at)
        .where(or_(Job.state == QUEUED, Job.state == RUNNING))
        .execution_options(yield_per=READ_CHUNK)
    )
    entries: list[QueueEntry] = []
    for rows in result.partitions():
        entries += [QueueEntry(*row) for row in rows]
        if pause is not None:
            pause()
    return entries


def inflight_counts(entries: list[QueueEntry]) -> Counter[str]:
    """Jobs per user handed to Celery and not finished."""
    return Counter(e.user_id for e in entries if e.state == RUNNING or e.dispatched_at is not None)


def order_waiting(entries: list[QueueEntry]) -> list[QueueEntry]:
    """The waiting entries of ``entries`` in fair order (see the module docstring)."""
    inflight = inflight_counts(entries)
    per_user: dict[str, list[QueueEntry]] = defaultdict(list)
    for e in entries:
        if e.state == QUEUED and e.dispatched_at is None:
            per_user[e.user_id].append(e)
    keyed = []
    for user_id, jobs in per_user.items():
        jobs.sort(key=lambda e: (e.created_at, e.id))
        for index, e in enumerate(jobs):
            keyed.append(((inflight[user_id] + index, e.created_at, e.id), e))
    keyed.sort(key=lambda pair: pair[0])
    return [e for _, e in keyed]


def fair_order(session: Session) -> list[str]:
    """Ids of the waiting jobs in the order the dispatcher must hand them to Celery."""
    return [e.id for e in order_waiting(active_entries(session))]


def queue_positions(session: Session) -> dict[str, int]:
    """``{job_id: position}`` (1-based) for every queued job; running/finished jobs are absent.

    Reads every active job: the dispatcher calls this once per round and keeps the result for readers
    (``backend.jobs.dispatch.stored_positions``); a web process without Redis calls it directly."""
    return positions_of(active_entries(session))


def positions_of(entries: list[QueueEntry]) -> dict[str, int]:
    """``queue_positions`` over entries already read."""
    dispatched = sorted(
        (e for e in entries if e.state == QUEUED and e.dispatched_at is not None),
        key=lambda e: (e.dispatched_at, e.created_at, e.id),
    )
    ordered = dispatched + order_waiting(entries)
    return {e.id: position for position, e in enumerate(ordered, start=1)}


def next_to_dispatch(session: Session, max_inflight_per_user: int, limit: int | None = None) -> list[str]:
    """Ids of waiting jobs to hand to Celery now: fair order, skipping users already at
    ``max_inflight_per_user`` jobs in flight (counting the ones picked here). At most ``limit`` ids."""
    return pick(active_entries(session), max_inflight_per_user, limit)


def pick(entries: list[QueueEntry], max_inflight_per_user: int, limit: int | None = None) -> list[str]:
    """``next_to_dispatch`` over entries already read."""
    inflight = inflight_counts(entries)
    picked: list[str] = []
    for e in order_waiting(entries):
        if limit is not None and len(picked) >= limit:
            break
        if inflight[e.user_id] >= max_inflight_per_user:
            continue
        inflight[e.user_id] += 1
        picked.append(e.id)
    return picked
