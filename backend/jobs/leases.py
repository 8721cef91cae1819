"""Who is alive and who holds which job: worker heartbeats, job leases and the reaper.

Redis keys (all with a time-to-live, so a dead process's keys vanish by themselves):

- ``maskweb:worker:<hostname>`` = JSON ``{pid, model_config, started_at}``, TTL ``WORKER_TTL_S``: a worker process is alive (``/readyz`` reads it).
- ``maskweb:lease:<job id>`` = ``<hostname>|<pid>|<task id>``, TTL ``LEASE_TTL_S``: that process is running the
  job for the queue message ``<task id>``.
- ``maskweb:lease-missing`` = ``{job id: Redis time first seen without a lease}``: the reaper's memory, so a
  lease must stay missing for ``LEASE_MISSING_GRACE_S`` before its job counts as lost. A keeper that takes a
  lease back removes the job's entry in the same step: a lease that vanishes, returns and vanishes again
  counts from its second absence, even when no reaper round saw it back (the rounds wait on the dispatcher
  lock, so they can be far apart).

Two threads per worker process, so that nothing slow can starve a lease:

- ``LeaseKeeper`` refreshes the worker key and the leases of the jobs this process runs every ``HEARTBEAT_S``
  seconds and does nothing else: no database, no dispatcher lock, its own Redis connections with short
  timeouts. A refresh that finds its lease gone (expired during a long stall, or Redis restarted without
  persistence) takes it back, since the job is still running here; one that finds another holder stops
  refreshing (the job was handed to another worker, and this run will end with ``JobLost``).
- ``Heartbeat`` (the maintenance thread) runs ``reap`` every ``REAP_INTERVAL_S`` and then the dispatcher's
  ``pump``, and a ``pump`` after each job (``request_round``); either may wait up to tens of seconds for the
  database or the dispatcher lock without harm.

``reap`` puts a job in state ``running`` back in the waiting queue (or fails it with ``worker_lost`` after
``MAX_ATTEMPTS`` starts) once its lease has been missing for ``LEASE_MISSING_GRACE_S``: longer than a
keeper needs to notice and take a lost lease back, so a live worker's job is never taken from it. It also
reconciles the broker with the database (``_requeue_lost_messages``): a dispatched job whose message is
neither queued nor held by a worker goes back to waiting, at once when Redis lost its data (its epoch key is
gone), else after ``LOST_MESSAGE_GRACE_S``. Putting a job back is always safe: the dispatcher gives it a new
task id, so an old message that does turn up is stale and dropped (``backend.jobs.lifecycle.claim``), and the
worker of a new dispatch takes over a lease left by an older one (``acquire_lease``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from datetime import timedelta

import redis
from sqlalchemy import select, update

from backend.settings import Settings
from backend.storage.db import session_scope
from backend.storage.models import FAILED, QUEUED, RUNNING, WAITING, Job, utcnow

from .celery_app import QUEUE
from .connections import engine, redis_client
from .dispatch import pump
from .events import publish_job

log = logging.getLogger(__name__)

WORKER_PREFIX = "maskweb:worker:"
LEASE_PREFIX = "maskweb:lease:"
MISSING_KEY = "maskweb:lease-missing"
EPOCH_KEY = "maskweb:epoch"  # set once per Redis dataset: gone means Redis lost its data
HEARTBEAT_S = 5
WORKER_TTL_S = 30
LEASE_TTL_S = 20
LEASE_MISSING_GRACE_S = 3 * HEARTBEAT_S  # > one keeper round plus a slow Redis call
KEEPER_REDIS_TIMEOUT_S = 3
REAP_INTERVAL_S = 10
MAX_ATTEMPTS = 3
LOST_MESSAGE_GRACE_S = (
    120  # a dispatched job this old whose message is nowhere in the broker is re-dispatched
)
UNACKED_KEY = "unacked"  # kombu's Redis transport: {delivery tag: message} of messages held by workers

# Delete a key only while it still holds our value (a lease taken over must stay the new owner's).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# Refresh our lease; take it back when it is gone (and clear the reaper's note that it was missing: the next
# time it goes missing counts from then); leave it when another process holds it.
# KEYS: the lease, MISSING_KEY; ARGV: our value, the TTL, the job id. Returns 1 (refreshed), 2 (taken back),
# 0 (someone else's).
_REFRESH = """
local current = redis.call('get', KEYS[1])
if current == ARGV[1] then redis.call('expire', KEYS[1], ARGV[2]) return 1 end
if not current then
  redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
  redis.call('hdel', KEYS[2], ARGV[3])
  return 2
end
return 0
"""
_SWAP = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) end return nil"
)


def worker_key(hostname: str) -> str:
    return WORKER_PREFIX + hostname


def lease_key(job_id: str) -> str:
    return LEASE_PREFIX + job_id


def holder_name(hostname: str, pid: int | None = None) -> str:
    return f"{hostname}|{os.getpid() if pid is None else pid}"


def lease_value(holder: str, task_id: str) -> str:
    """What a lease key holds: the process (``host|pid``) and the queue message it runs the job for."""
    return f"{holder}|{task_id}"


def _parse_lease(value: str) -> tuple[str, str, str]:
    """``(host, pid, task_id)`` of a lease value (``task_id`` empty in a value without one)."""
    host, _, rest = value.partition("|")
    pid, _, task_id = rest.partition("|")
    return host, pid, task_id


def live_workers(settings: Settings) -> list[str]:
    """Hostnames of worker processes whose heartbeat has not expired."""
    r = redis_client(settings)
    return sorted(key[len(WORKER_PREFIX) :] for key in r.scan_iter(match=WORKER_PREFIX + "*", count=100))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _current_task_id(settings: Settings, job_id: str) -> str | None:
    with session_scope(engine(settings)) as session:
        job = session.get(Job, job_id)
        return job.celery_task_id if job is not None else None


def acquire_lease(settings: Settings, job_id: str, holder: str, task_id: str) -> bool:
    """Take the job's lease for ``holder`` running message ``task_id``. False when another live process
    holds it for the job's current dispatch.

    Taken over: a lease left by a dead process on this same host (a pool child killed mid-job whose message
    came straight back), and a lease held for an older dispatch of the job (its holder stalled, the job was
    put back and handed out again as ``task_id``; the stalled run ends with ``JobLost`` at its next write).
    """
    r = redis_client(settings)
    key = lease_key(job_id)
    mine = lease_value(holder, task_id)
    if r.set(key, mine, nx=True, ex=LEASE_TTL_S):
        return True
    current = r.get(key)
    if current is None:
        return bool(r.set(key, mine, nx=True, ex=LEASE_TTL_S))
    host, pid, their_task = _parse_lease(current)
    my_host = holder.partition("|")[0]
    dead_here = host == my_host and pid.isdigit() and not _pid_alive(int(pid))
    superseded = their_task != task_id and _current_task_id(settings, job_id) == task_id
    if dead_here or superseded:
        return bool(r.eval(_SWAP, 1, key, current, mine, LEASE_TTL_S))  # compare-and-set
    return False


def release_lease(settings: Settings, job_id: str, value: str) -> None:
    redis_client(settings).eval(_RELEASE, 1, lease_key(job_id), value)


def worker_lost_error(attempts: int) -> dict[str, str]:
    """The error of a job whose workers died ``attempts`` times while running it."""
    return {
        "error_code": "worker_lost",
        "error": (
            f"The worker stopped while segmenting this image {attempts} times (the limit is {MAX_ATTEMPTS}); "
            "the image may need more memory than a worker has."
        ),
    }


def _missing_long_enough(r, running_ids: list[str]) -> set[str]:
    """Of ``running_ids``, those whose lease has been missing for ``LEASE_MISSING_GRACE_S`` (Redis time).

    Updates the reaper's memory: a job seen without a lease for the first time is noted, one with a lease
    again (its keeper took it back) or no longer running is forgotten.
    """
    if not running_ids:
        r.delete(MISSING_KEY)
        return set()
    pipe = r.pipeline()
    for job_id in running_ids:
        pipe.exists(lease_key(job_id))
    present = dict(zip(running_ids, pipe.execute(), strict=True))
    now = float(r.time()[0])
    seen = {k: float(v) for k, v in r.hgetall(MISSING_KEY).items()}
    forget = [job_id for job_id in seen if job_id not in present or present[job_id]]
    if forget:
        r.hdel(MISSING_KEY, *forget)
    lost = set()
    for job_id, has_lease in present.items():
        if has_lease:
            continue
        first = seen.get(job_id)
        if first is None:
            r.hsetnx(MISSING_KEY, job_id, str(now))
        elif now - first >= LEASE_MISSING_GRACE_S:
            lost.add(job_id)
    return lost


def reap(settings: Settings) -> list[str]:
    """Put running jobs whose lease stayed missing back into the waiting queue, or fail them after
    MAX_ATTEMPTS; re-dispatch dispatched jobs whose message the broker lost.

    Returns the ids of the jobs changed (their new state is published). Safe to run in many processes at
    once: each change is a conditional UPDATE that only applies to a row still running the same task.
    """
    r = redis_client(settings)
    changed: list[str] = []
    with session_scope(engine(settings)) as session:
        changed += _requeue_lost_messages(settings, session)
        running = session.execute(
            select(Job.id, Job.celery_task_id, Job.attempts).where(Job.state == RUNNING)
        ).all()
        lost = _missing_long_enough(r, [job_id for job_id, _, _ in running])
        for job_id, task_id, attempts in running:
            if job_id not in lost:
                continue
            if attempts >= MAX_ATTEMPTS:
                values = dict(state=FAILED, stage=None, finished_at=utcnow(), **worker_lost_error(attempts))
            else:
                values = dict(
                    state=QUEUED, stage=WAITING, progress=0.0, dispatched_at=None, celery_task_id=None
                )
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == RUNNING, Job.celery_task_id == task_id)
                .values(**values)
            )
            if result.rowcount:
                log.warning("job %s lost its worker (attempt %d): %s", job_id, attempts, values["state"])
                changed.append(job_id)
    if changed:
        with session_scope(engine(settings)) as session:
            for job in session.scalars(select(Job).where(Job.id.in_(changed))):
                if job.state != QUEUED:  # queued ones get their position from the dispatcher's pump
                    publish_job(settings, job)
    return changed


def _messages_in_broker(settings: Settings) -> str:
    """Every queued and worker-held Celery message of the inference queue, concatenated (they are small and
    few: at most ``max_inflight_per_user`` per user)."""
    r = redis_client(settings)
    pipe = r.pipeline()
    pipe.lrange(QUEUE, 0, -1)
    pipe.hvals(UNACKED_KEY)
    queued, held = pipe.execute()
    return "\n".join([*queued, *held])


def redis_lost_data(settings: Settings) -> bool:
    """True once after Redis came back empty (restarted without persistence): its epoch key was missing.
    Sets a new epoch, so the next call is False until Redis loses its data again."""
    return bool(redis_client(settings).set(EPOCH_KEY, uuid.uuid4().hex, nx=True))


def _requeue_lost_messages(settings: Settings, session) -> list[str]:
    """Put back to waiting the dispatched, not started jobs whose message the broker no longer has: at once
    when Redis lost its data, else those dispatched over ``LOST_MESSAGE_GRACE_S`` ago (a message in flight
    between the dispatcher's commit and its send is not yet in the broker)."""
    query = select(Job.id, Job.celery_task_id).where(Job.state == QUEUED, Job.dispatched_at.is_not(None))
    if not redis_lost_data(settings):
        query = query.where(Job.dispatched_at < utcnow() - timedelta(seconds=LOST_MESSAGE_GRACE_S))
    candidates = session.execute(query).all()
    if not candidates:
        return []
    in_broker = _messages_in_broker(settings)
    lost = []
    for job_id, task_id in candidates:
        if task_id and task_id in in_broker:
            continue
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == QUEUED, Job.celery_task_id == task_id)
            .values(dispatched_at=None, celery_task_id=None)
        )
        if result.rowcount:
            log.warning("job %s was dispatched but its message is gone; queueing it again", job_id)
            lost.append(job_id)
    return lost


class LeaseKeeper(threading.Thread):
    """Refreshes this worker's key and its job leases every ``HEARTBEAT_S`` seconds, and nothing else.

    ``hold(job_id, task_id)`` / ``drop(job_id)`` add and remove the leases it keeps.
    """

    def __init__(self, settings: Settings, hostname: str):
        super().__init__(name="maskweb-leases", daemon=True)
        self.settings = settings
        self.hostname = hostname
        self.holder = holder_name(hostname)
        self._held: dict[str, str] = {}  # job id -> lease value
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # Its own connections, with short timeouts: never queued behind another thread's slow call.
        self.redis = redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_timeout=KEEPER_REDIS_TIMEOUT_S,
            socket_connect_timeout=KEEPER_REDIS_TIMEOUT_S,
        )
        self.info = json.dumps(
            {"pid": os.getpid(), "model_config": str(settings.model_config), "started_at": round(time.time())}
        )

    def hold(self, job_id: str, task_id: str) -> bool:
        """Take the job's lease for message ``task_id`` (False if another live process holds it) and keep it
        fresh until ``drop``."""
        if not acquire_lease(self.settings, job_id, self.holder, task_id):
            return False
        with self._lock:
            self._held[job_id] = lease_value(self.holder, task_id)
        return True

    def drop(self, job_id: str) -> None:
        """Stop refreshing the job's lease and release it (if Redis cannot be reached, it expires by itself)."""
        with self._lock:
            value = self._held.pop(job_id, None)
        if value is not None:
            try:
                release_lease(self.settings, job_id, value)
            except Exception:
                log.warning("could not release the lease of job %s; it expires in %ss", job_id, LEASE_TTL_S)

    def held(self) -> dict[str, str]:
        with self._lock:
            return dict(self._held)

    def refresh(self) -> None:
        """One round: the worker key, then every held lease (taken back if it vanished)."""
        self.redis.set(worker_key(self.hostname), self.info, ex=WORKER_TTL_S)
        for job_id, value in self.held().items():
            outcome = self.redis.eval(_REFRESH, 2, lease_key(job_id), MISSING_KEY, value, LEASE_TTL_S, job_id)
            if outcome == 2:
                log.warning(
                    "the lease of job %s had vanished while this process runs it; took it back", job_id
                )
            elif outcome == 0:
                log.warning("job %s is leased to another process now; no longer refreshing it", job_id)
                with self._lock:
                    if self._held.get(job_id) == value:
                        del self._held[job_id]

    def stop(self) -> None:
        self._stopping.set()
        try:
            self.redis.delete(worker_key(self.hostname))
        except Exception:
            log.debug("could not remove the heartbeat key", exc_info=True)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.refresh()
            except Exception:
                log.warning("lease refresh failed; retrying in %ss", HEARTBEAT_S, exc_info=True)
            self._stopping.wait(HEARTBEAT_S)


class Heartbeat(threading.Thread):
    """A worker process's background work: a ``LeaseKeeper`` for its key and leases, and this thread for
    the reaper and the dispatcher (which may wait on the database or the dispatcher lock).

    The dispatcher round that follows a job runs here too (``request_round``), not in the job's thread: with a
    deep queue a round costs up to a few hundred milliseconds (10,000 waiting: ~0.1 s of CPU), which the worker would
    otherwise add to every job before taking the next message. Requests that arrive while a round runs are
    served by one more round after it.

    ``hold`` / ``drop`` / ``beat`` are the keeper's; ``start`` / ``stop`` run and end both threads.
    """

    def __init__(self, settings: Settings, hostname: str):
        super().__init__(name="maskweb-maintenance", daemon=True)
        self.settings = settings
        self.keeper = LeaseKeeper(settings, hostname)
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set by stop() and request_round()
        self._round_wanted = False

    def hold(self, job_id: str, task_id: str) -> bool:
        return self.keeper.hold(job_id, task_id)

    def drop(self, job_id: str) -> None:
        self.keeper.drop(job_id)

    def beat(self) -> None:
        self.keeper.refresh()

    def request_round(self) -> None:
        """Ask for a dispatcher round (``pump``) on this thread, soon; returns at once."""
        self._round_wanted = True
        self._wake.set()

    def start(self) -> None:
        self.keeper.start()
        super().start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self.keeper.stop()

    def run(self) -> None:
        next_reap = time.monotonic()
        while not self._stopping.is_set():
            reaping = time.monotonic() >= next_reap
            self._wake.clear()
            self._round_wanted = False  # a request from now on gets a round after this one
            try:
                if reaping:
                    next_reap = time.monotonic() + REAP_INTERVAL_S
                    reap(self.settings)
                pump(self.settings)  # hands out the jobs just put back or freed, and anything waiting
            except Exception:
                log.warning(
                    "reaper or dispatcher round failed; the next runs within %ss",
                    REAP_INTERVAL_S,
                    exc_info=True,
                )
            if not self._round_wanted:
                self._wake.wait(max(0.0, next_reap - time.monotonic()))
