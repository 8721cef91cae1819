"""The fair order of the queue: the one definition used for queue positions AND for dispatching.

The dispatcher (``backend.jobs.dispatch``) hands jobs out in ``fair_order`` (``pick`` does exactly that with the
per-user in-flight cap), and every queue position shown anywhere comes from ``positions_of``, so what a user is
told is the order in which work is actually handed out.

Definitions (all jobs in state ``queued`` or ``running``):

- *in flight*: handed to Celery (``dispatched_at`` set) and not finished: queued-and-dispatched, or running.
- *waiting*: queued with ``dispatched_at`` NULL (held back in the database).
- A waiting job's *round* is (the number of its user's jobs in flight) + (its index among its user's waiting
  jobs, oldest first). Waiting jobs are ordered by (round, created_at, id): round-robin across users, and a
  user with work already in flight goes after users with none. One user's hundred images therefore hold back
  another user's single image by at most one job per user ahead of it.
- Queue positions (1-based): first the dispatched-but-not-started jobs, in dispatch order
  (``dispatched_at, created_at, id``), then the waiting jobs in fair order. Running and finished jobs have no
  position.

The database sorts (one read, ``read_queue``); Python only counts: the waiting jobs come oldest first, so a
round's jobs are already in (created_at, id) order and the fair order is the rounds one after another, built in
one pass without comparing timestamps. Pure storage logic: no Celery, no Redis.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import case, or_, select
from sqlalchemy.orm import Session

from .models import QUEUED, RUNNING, Job

READ_CHUNK = 2000  # rows ``read_queue`` reads between two calls of its ``pause``

# What ``read_queue`` reads per job besides its ids: 0 waiting, 1 dispatched and not started, 2 running.
_WAITING, _DISPATCHED, _RUNNING = 0, 1, 2


@dataclass(frozen=True)
class QueueSnapshot:
    """The active jobs as one read saw them, already in the orders the rules need.

    ``dispatched``: ``(job_id, user_id)`` of jobs handed out and not started, in dispatch order.
    ``running``: ``{user_id: jobs running}``.
    ``waiting``: ``(job_id, user_id)`` of the jobs held in the database, oldest first (``created_at, id``)."""

    dispatched: list[tuple[str, str]]
    running: Counter[str]
    waiting: list[tuple[str, str]]

    def in_flight(self) -> Counter[str]:
        """``{user_id: jobs handed out and not finished}`` (dispatched or running)."""
        counts = Counter(self.running)
        counts.update(user_id for _, user_id in self.dispatched)
        return counts

    def handed_out(self, job_ids: Iterable[str]) -> QueueSnapshot:
        """This snapshot after ``job_ids`` (waiting ones) were dispatched together: they go after the jobs
        dispatched before them, oldest first (equal ``dispatched_at``, then ``created_at, id``)."""
        handed = set(job_ids)
        if not handed:
            return self
        moved = [job for job in self.waiting if job[0] in handed]
        waiting = [job for job in self.waiting if job[0] not in handed]
        return QueueSnapshot(self.dispatched + moved, self.running, waiting)


def read_queue(session: Session, pause: Callable[[], None] | None = None) -> QueueSnapshot:
    """Every queued or running job's ids and kind, in one indexed read sorted by the database (in-flight
    jobs in dispatch order first, then the waiting oldest first), fetched ``READ_CHUNK`` rows at a time with
    ``pause()`` called after each chunk (the dispatcher lets its event loop run there). Reads no timestamps
    into Python: converting 10,000 rows' two datetimes cost more than everything else in a round."""
    kind = case(
        (Job.state == RUNNING, _RUNNING), (Job.dispatched_at.is_not(None), _DISPATCHED), else_=_WAITING
    ).label("kind")
    # Core, not the ORM's execute: these are plain tuples, and the ORM's per-row wrapping was a third of the read
    result = session.connection().execute(
        select(Job.id, Job.user_id, kind)
        .where(or_(Job.state == QUEUED, Job.state == RUNNING))
        .order_by(case((Job.dispatched_at.is_(None), 1), else_=0), Job.dispatched_at, Job.created_at, Job.id)
        .execution_options(yield_per=READ_CHUNK)
    )
    dispatched: list[tuple[str, str]] = []
    running: Counter[str] = Counter()
    waiting: list[tuple[str, str]] = []
    for rows in result.partitions():
        for job_id, user_id, job_kind in rows:
            if job_kind == _WAITING:
                waiting.append((job_id, user_id))
            elif job_kind == _DISPATCHED:
                dispatched.append((job_id, user_id))
            else:
                running[user_id] += 1
        if pause is not None:
            pause()
    return QueueSnapshot(dispatched, running, waiting)


def order_waiting(snapshot: QueueSnapshot) -> list[tuple[str, str]]:
    """The waiting ``(job_id, user_id)`` in fair order (see the module docstring): the jobs of round 0, then
    round 1, ...; within a round in the order read (oldest first). One pass, no sort."""
    in_flight = snapshot.in_flight()
    seen: Counter[str] = Counter()
    rounds: list[list[tuple[str, str]]] = []
    for job in snapshot.waiting:
        user_id = job[1]
        number = in_flight[user_id] + seen[user_id]
        seen[user_id] += 1
        while len(rounds) <= number:
            rounds.append([])
        rounds[number].append(job)
    return [job for jobs in rounds for job in jobs]


def positions_of(snapshot: QueueSnapshot) -> dict[str, int]:
    """``{job_id: position}`` (1-based) of every queued job; running ones are absent."""
    ordered = [job_id for job_id, _ in snapshot.dispatched]
    ordered += [job_id for job_id, _ in order_waiting(snapshot)]
    return {job_id: position for position, job_id in enumerate(ordered, start=1)}


def pick(snapshot: QueueSnapshot, max_inflight_per_user: int, limit: int | None = None) -> list[str]:
    """Ids of waiting jobs to hand to Celery now: fair order, skipping users already at
    ``max_inflight_per_user`` jobs in flight (counting the ones picked here). At most ``limit`` ids."""
    in_flight = snapshot.in_flight()
    picked: list[str] = []
    for job_id, user_id in order_waiting(snapshot):
        if limit is not None and len(picked) >= limit:
            break
        if in_flight[user_id] >= max_inflight_per_user:
            continue
        in_flight[user_id] += 1
        picked.append(job_id)
    return picked


def fair_order(session: Session) -> list[str]:
    """Ids of the waiting jobs in the order the dispatcher must hand them to Celery."""
    return [job_id for job_id, _ in order_waiting(read_queue(session))]


def queue_positions(session: Session) -> dict[str, int]:
    """``{job_id: position}`` (1-based) for every queued job; running/finished jobs are absent.

    Reads every active job: the dispatcher calls this once per round and keeps the result for readers
    (``backend.jobs.dispatch.stored_positions``); a web process without Redis calls it directly."""
    return positions_of(read_queue(session))


def next_to_dispatch(session: Session, max_inflight_per_user: int, limit: int | None = None) -> list[str]:
    """``pick`` over a fresh read."""
    return pick(read_queue(session), max_inflight_per_user, limit)
