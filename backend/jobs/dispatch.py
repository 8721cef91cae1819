"""The dispatcher: moves waiting jobs from the database into Celery in the fair order, and keeps every waiting
job's queue position up to date for its watchers.

Jobs wait in the database (``dispatched_at`` NULL) and only a few per user are inside Celery at a time
(``settings.max_inflight_per_user``), so one user's hundred images do not fill the broker queue ahead of
another user's one. The order is ``backend.storage.queue_order`` (the one definition, also used for the
positions users see). ``pump`` runs after every change that can move the queue: an upload, a cancel, a delete
(web), a finished job and every reaper round (worker: on its maintenance thread, ``leases.Heartbeat``). Runs
are serialised by a Redis lock, so two processes never hand out the same job or overshoot a user's cap, and
calls that waited for the lock share the round after it (``pump``).

A round is bounded: one read of the active jobs' ids, sorted by the database (``queue_order.read_queue``), at most ``MAX_PICKS_PER_ROUND`` jobs handed
out, every position stored in one Redis hash (what the web reads: ``stored_positions``, one HMGET per request
instead of a scan), and events only for positions that are news (``worth_publishing``). In the web, uploads
pump through ``Coalescer``: a burst of requests shares rounds instead of queueing one each on the lock.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from backend.greenlets import gevent_patched
from backend.settings import Settings
from backend.storage.db import session_scope
from backend.storage.models import QUEUED, Job, utcnow
from backend.storage.queue_order import pick, positions_of, read_queue

from .celery_app import QUEUE, TASK_NAME, celery_for
from .connections import engine, redis_client
from .events import emitter as events_emitter
from .events import publish_job

log = logging.getLogger(__name__)

LOCK_KEY = "maskweb:dispatch:lock"
POSITIONS_KEY = "maskweb:dispatch:positions"  # {job_id: position} of every queued job, as of the last round
PUBLISHED_KEY = "maskweb:dispatch:published"  # {job_id: the position its watchers were last told}
STARTED_KEY = "maskweb:dispatch:started"  # how many rounds have started, in every process (see ``pump``)
COVERED_KEY = "maskweb:dispatch:covered"  # the STARTED_KEY count of the latest round that finished its work
MAX_PICKS_PER_ROUND = 50  # bounds a round's time (about 2 ms a job: its UPDATE and its Celery message); every
# finished job starts another round, so workers are handed work faster than they take it
EXACT_POSITIONS = 100  # positions up to this one are published on every change
# Bounds a round's events (about 0.2 ms each): after Redis lost what was published, a mass cancel at the front or
# a thousand uploads at once, every waiting job's position can be news, and 10,000 events held the lock for 2 s
# while no job was handed out. The rest (the front first) go in the next rounds; a page that asks (subscribe,
# GET) always gets its exact position meanwhile.
MAX_NEWS_PER_ROUND = 500
# The lock lives LOCK_TIMEOUT_S and its holder extends it every LOCK_RENEW_S while its round runs, so a holder
# killed mid-round (SIGKILL, out of memory) stops dispatch for at most LOCK_TIMEOUT_S, however long rounds take.
LOCK_TIMEOUT_S = 10
LOCK_RENEW_S = 2
LOCK_WAIT_S = 30
BREAK_S = 0.001  # a round's pause between its steps (_let_others_run)
# A burst of uploads gathers before its round: the round starts once no upload asked for one for
# GATHER_QUIET_S, or GATHER_MAX_S after the first asked. Twenty simultaneous uploads then share one round that
# runs after they are answered, instead of rounds interleaved with (and slowing) the requests still arriving.
GATHER_QUIET_S = 0.02
GATHER_MAX_S = 0.25


def _let_others_run() -> None:
    """A break between a round's steps (and between the chunks of its read) in a web process. There (gevent) a
    round runs on the event loop, and with 10,000 jobs queued its reading, ordering and numbering take 30-50
    ms of CPU (100-170 ms before the database sorted them) with nothing to wait on in between: without breaks, every request and socket of the process
    waited for all of it. A sleep of ``BREAK_S`` (gevent's, under its patch) lets the loop poll its sockets and
    run whatever is ready; a zero sleep would not (gevent runs other ready greenlets then, but neither I/O nor
    timers). Never called while the round holds the database's write lock (from its first UPDATE to the
    commit), so a request served meanwhile can still write. Elsewhere (a worker, whose rounds run after its
    jobs, in their thread) there is nothing to let run: no pause."""
    if gevent_patched("time"):
        time.sleep(BREAK_S)


def _hand_out(settings: Settings) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """One read of the active jobs: mark the next ones in fair order as dispatched (at most
    ``MAX_PICKS_PER_ROUND``) and compute every queued job's position after that.

    Returns ``([(job_id, celery_task_id)] to send, {job_id: position})``."""
    picked: list[tuple[str, str]] = []
    with session_scope(engine(settings)) as session:
        queue = read_queue(session, pause=_let_others_run)
        chosen = pick(queue, settings.max_inflight_per_user, MAX_PICKS_PER_ROUND)
        _let_others_run()
        if chosen:
            picked = _mark_dispatched(session, chosen, utcnow())
    _let_others_run()
    return picked, positions_of(queue.handed_out(job_id for job_id, _ in picked))


def _mark_dispatched(session: Session, chosen: list[str], now: datetime) -> list[tuple[str, str]]:
    """Mark the ``chosen`` jobs (not empty) dispatched at ``now``, each with a new Celery task id, in one UPDATE
    and read back which were marked. A chosen job that is no longer waiting (cancelled, or handed out by a round
    that got the lock first) is left as it is. Returns the ``(job_id, task_id)`` of those marked, in the order
    chosen. One statement rather than one per job: the database's write lock is held from the first UPDATE to
    the commit, and 50 of them held it for ~17 ms on SQLite (half that now), keeping uploads waiting."""
    task_ids = {job_id: uuid.uuid4().hex for job_id in chosen}
    session.execute(
        update(Job)
        .where(Job.id.in_(chosen), Job.state == QUEUED, Job.dispatched_at.is_(None))
        .values(dispatched_at=now, celery_task_id=case(task_ids, value=Job.id))
        .execution_options(synchronize_session=False)
    )
    marked = dict(session.execute(select(Job.id, Job.celery_task_id).where(Job.id.in_(chosen))).all())
    return [(job_id, task_id) for job_id, task_id in task_ids.items() if marked.get(job_id) == task_id]


def _send(settings: Settings, picked: list[tuple[str, str]]) -> None:
    """Publish one Celery message per job, all through one producer (one connection taken from the pool for
    the round). A job whose message cannot be sent goes back to waiting."""
    app = celery_for(settings)
    unsent = list(picked)
    try:
        with app.producer_or_acquire() as producer:
            while unsent:
                job_id, task_id = unsent[0]
                try:
                    # One job per message: a worker batches jobs from several messages into one model call.
                    app.send_task(TASK_NAME, args=[[job_id]], task_id=task_id, queue=QUEUE, producer=producer)
                except Exception:
                    log.exception("could not send job %s to the queue; it stays waiting", job_id)
                    _unsend(settings, job_id, task_id)
                unsent.pop(0)
    except Exception:  # no connection to the broker at all
        log.exception("could not reach the queue; %d jobs stay waiting", len(unsent))
        for job_id, task_id in unsent:
            _unsend(settings, job_id, task_id)


def _unsend(settings: Settings, job_id: str, task_id: str) -> None:
    """Put a job whose message was not sent back among the waiting (the next round hands it out again)."""
    with session_scope(engine(settings)) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == QUEUED, Job.celery_task_id == task_id)
            .values(dispatched_at=None, celery_task_id=None)
        )


def worth_publishing(new: int, published: int | None) -> bool:
    """Whether a job's new queue position is news to its watchers: always near the front (exact positions up
    to ``EXACT_POSITIONS``), further back only after moving by a tenth since the last published one. This
    bounds the events per round (about 10 ln(n / EXACT_POSITIONS) beyond the front when the queue advances by
    one) instead of one per queued job; a page that asks (subscribe, GET) always gets the exact position."""
    if published is None:
        return True
    if new == published:
        return False
    return new <= EXACT_POSITIONS or abs(new - published) * 10 >= published


def _store_positions(settings: Settings, positions: dict[str, int]) -> list[str]:
    """Store every queued job's position for readers (``stored_positions``), in one transaction so that readers
    never see an empty or half-written table. Returns the ids whose new position is news (``worth_publishing``),
    front first."""
    r = redis_client(settings)
    published = {job_id: int(p) for job_id, p in r.hgetall(PUBLISHED_KEY).items()}
    pipe = r.pipeline()
    pipe.delete(POSITIONS_KEY)
    if positions:
        pipe.hset(POSITIONS_KEY, mapping={k: str(v) for k, v in positions.items()})
    gone = [job_id for job_id in published if job_id not in positions]
    if gone:
        pipe.hdel(PUBLISHED_KEY, *gone)
    pipe.execute()
    return [job_id for job_id, p in positions.items() if worth_publishing(p, published.get(job_id))]


def _publish_news(settings: Settings, positions: dict[str, int], news: list[str]) -> int:
    """Publish a ``job`` event with its new position to each job in ``news``; returns how many."""
    jobs = []
    if news:
        with session_scope(engine(settings)) as session:
            for start in range(0, len(news), 500):
                jobs += session.scalars(select(Job).where(Job.id.in_(news[start : start + 500])))
    if jobs:
        redis_client(settings).hset(PUBLISHED_KEY, mapping={job.id: str(positions[job.id]) for job in jobs})
    for job in sorted(jobs, key=lambda j: positions[j.id]):
        publish_job(settings, job, positions[job.id])
    return len(jobs)


def stored_positions(settings: Settings, job_ids: list[str]) -> dict[str, int]:
    """The queue positions of ``job_ids`` as of the last dispatcher round (one Redis HMGET); jobs that round
    did not see queued (new, running, finished) are absent. Raises redis errors."""
    if not job_ids:
        return {}
    values = redis_client(settings).hmget(POSITIONS_KEY, job_ids)
    return {job_id: int(v) for job_id, v in zip(job_ids, values, strict=True) if v is not None}


def pump(settings: Settings, positions_stored: Callable[[], None] | None = None) -> dict[str, int] | None:
    """Hand waiting jobs to Celery in fair order, then publish moved queue positions.

    A round that started after this call and finished while this one waited for the dispatcher lock already
    saw everything committed before the call, so this call then runs none of its own: with a deep queue a
    round costs a few hundred milliseconds, and several workers finishing jobs at once would otherwise run one
    each, in turn, every one waiting for the others'. (``STARTED_KEY`` counts the rounds started in every
    process; ``COVERED_KEY`` is the count of the latest one that finished: it covered every call made before
    it started.)

    ``positions_stored`` is called as soon as the new positions are readable (before the events and then the
    Celery messages go out: an upload waiting for its positions need not wait for those). At most
    ``MAX_NEWS_PER_ROUND`` positions are published, those nearest the front first. Returns ``{job_id: queue
    position}`` of every queued job after the run, or None when another round covered the call. Raises redis
    errors when Redis is unreachable (the jobs stay waiting in the database and the next pump hands them out).
    """
    return _round(settings, positions_stored)[0]


def _count(client, key: str) -> int:
    return int(client.get(key) or 0)


def _round(
    settings: Settings, positions_stored: Callable[[], None] | None
) -> tuple[dict[str, int] | None, bool]:
    """``pump``'s work; also says whether the round did its most (handed out ``MAX_PICKS_PER_ROUND`` jobs or
    published ``MAX_NEWS_PER_ROUND`` positions: more may be waiting to go)."""
    client = redis_client(settings)
    # Read before waiting for the lock: the caller's changes are committed, so any round that starts after this
    # (its count goes up before it reads the database) sees them.
    ticket = _count(client, STARTED_KEY)
    # thread_local=False: the renewal thread extends the lock with the token this thread took it with
    lock = client.lock(LOCK_KEY, timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_WAIT_S, thread_local=False)
    if not lock.acquire():
        raise TimeoutError(f"the dispatcher lock {LOCK_KEY} stayed taken for {LOCK_WAIT_S}s")
    renewal = _LockRenewal(lock)
    try:
        if _count(client, COVERED_KEY) > ticket:  # a round that ran while we waited saw our changes
            if positions_stored is not None:
                positions_stored()
            return None, False
        started = client.incr(STARTED_KEY)
        picked, positions = _hand_out(settings)
        news = _store_positions(settings, positions)
        if positions_stored is not None:
            positions_stored()
        # The events go out before the messages: a job handed out in this round is announced as queued before
        # any worker can hold its message, so its "running" can never reach a page ahead of its "queued".
        _publish_news(settings, positions, news[:MAX_NEWS_PER_ROUND])
        if picked:
            _send(settings, picked)
        client.set(COVERED_KEY, started)
        return positions, len(picked) >= MAX_PICKS_PER_ROUND or len(news) > MAX_NEWS_PER_ROUND
    finally:
        renewal.stop()
        try:
            lock.release()
        except Exception:  # lost while we worked (see _LockRenewal): another round may run now, harmlessly
            log.debug("dispatcher lock had expired", exc_info=True)


class _LockRenewal:
    """Extends a held dispatcher lock to a full ``LOCK_TIMEOUT_S`` every ``LOCK_RENEW_S`` until ``stop()``, on a
    daemon thread (a greenlet under gevent). If the lock was lost meanwhile (Redis restarted without it, or a
    stall longer than its life), renewal stops with a warning: the round finishes, and a concurrent one cannot
    hand out the same job twice (a job is handed out by an UPDATE that requires it undispatched)."""

    def __init__(self, lock):
        self._lock = lock
        self._done = threading.Event()
        threading.Thread(target=self._renew, name="dispatch-lock-renewal", daemon=True).start()

    def _renew(self) -> None:
        while not self._done.wait(LOCK_RENEW_S):
            try:
                self._lock.reacquire()
            except Exception:
                if not self._done.is_set():  # not the round's own release, just before
                    log.warning(
                        "the dispatcher lock could not be extended; rounds may overlap", exc_info=True
                    )
                return

    def stop(self) -> None:
        self._done.set()


def connect(settings: Settings) -> None:
    """Make the connections and objects a round uses (the Celery app and a broker connection, the Socket.IO
    emitter, the Redis client and the database engine) now, instead of in the first round: building them imports
    and connects for most of a second, which a web process's first uploads would otherwise wait out with the
    event loop blocked. Raises what connecting raises."""
    redis_client(settings).ping()
    app = celery_for(settings)
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1)
    events_emitter(settings)
    with session_scope(engine(settings)) as session:
        read_queue(session)


class Coalescer:
    """Shares dispatcher rounds between concurrent callers in one process.

    ``pump_and_wait(timeout_s)`` returns once a round that *started after the call* has stored its positions (so
    it saw the caller's committed jobs), or after ``timeout_s``; callers arriving while a round runs are all served by
    the next one. A round gathers its callers first (``GATHER_QUIET_S``, ``GATHER_MAX_S``), so a burst is served
    by one round after it. The rounds run on a background thread (a greenlet under gevent). A failed round is
    logged: the jobs stay waiting in the database and a later round hands them out.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._cond = threading.Condition()
        self._requested = 0  # rounds asked for
        self._finished = 0  # the highest request number a finished round covered
        self._running = False

    def pump_and_wait(self, timeout_s: float) -> bool:
        """True when a covering round finished in time."""
        with self._cond:
            self._requested += 1
            wanted = self._requested
            if not self._running:
                self._running = True
                threading.Thread(target=self._rounds, name="dispatch-rounds", daemon=True).start()
            return self._cond.wait_for(lambda: self._finished >= wanted, timeout_s)

    def _gather(self) -> None:
        """Wait until callers stop arriving: ``GATHER_QUIET_S`` without a new one, ``GATHER_MAX_S`` at most."""
        deadline = time.monotonic() + GATHER_MAX_S
        while True:
            with self._cond:
                seen = self._requested
            time.sleep(min(GATHER_QUIET_S, max(0.0, deadline - time.monotonic())))
            with self._cond:
                if self._requested == seen or time.monotonic() >= deadline:
                    return

    def _rounds(self) -> None:
        while True:
            self._gather()
            with self._cond:
                if self._finished >= self._requested:
                    self._running = False
                    return
                covers = self._requested

            def served(covers=covers):
                with self._cond:
                    self._finished = max(self._finished, covers)
                    self._cond.notify_all()

            try:
                _, full = _round(self.settings, positions_stored=served)
            except Exception:
                log.exception("dispatcher round failed; the jobs stay waiting in the database")
                full = False
            served()
            if full:  # the round did its most: another one, for the jobs and positions still waiting to go
                with self._cond:
                    self._requested += 1


_coalescers: dict[tuple[str | None, str], Coalescer] = {}
_coalescers_lock = threading.Lock()


def coalescer(settings: Settings) -> Coalescer:
    """The process's Coalescer for this Redis and database."""
    key = (settings.redis_url, settings.database_url)
    with _coalescers_lock:
        if key not in _coalescers:
            _coalescers[key] = Coalescer(settings)
        return _coalescers[key]
