"""Who is alive and who holds which job: worker heartbeats, job leases and the reaper.

Redis keys (all with a time-to-live, so a dead process's keys vanish by themselves):

- ``maskweb:worker:<hostname>`` = JSON ``{pid, model_config, started_at}``, TTL ``WORKER_TTL_S``: a worker process is alive (``/readyz`` reads it).
- ``maskweb:lease:<job id>`` = ``<hostname>|<pid>``, TTL ``LEASE_TTL_S``: that process is running the job.

The reaper also finds jobs handed to Celery whose message is neither in the queue nor held by a worker
(Redis restarted without it, a worker lost between taking the message and starting the job) and puts them back
to waiting. Putting a job back is always safe: the dispatcher gives it a new task id, so an old message that
does turn up is stale and dropped (``backend.jobs.work.claim``).

A ``Heartbeat`` thread in each worker process refreshes both every ``HEARTBEAT_S`` seconds and runs ``reap``
every ``REAP_INTERVAL_S``: a job in state ``running`` without a lease lost its worker (kill -9, OOM, power), so
it goes back to the waiting queue (or fails with ``worker_lost`` after ``MAX_ATTEMPTS`` starts) and the
dispatcher hands it out again. A job held by a dead worker is therefore running again within about
``LEASE_TTL_S + REAP_INTERVAL_S`` seconds of a worker being alive.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from backend.settings import Settings

from .connections import engine, redis_client

log = logging.getLogger(__name__)

WORKER_PREFIX = "maskweb:worker:"
LEASE_PREFIX = "maskweb:lease:"
HEARTBEAT_S = 5
WORKER_TTL_S = 30
LEASE_TTL_S = 20
REAP_INTERVAL_S = 10
MAX_ATTEMPTS = 3
LOST_MESSAGE_GRACE_S = (
    120  # a dispatched job this old whose message is nowhere in the broker is re-dispatched
)
UNACKED_KEY = "unacked"  # kombu's Redis transport: {delivery tag: message} of messages held by workers

# Delete or refresh a key only while it still holds our value (a lease taken over must stay the new owner's).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_REFRESH = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
)


def worker_key(hostname: str) -> str:
    return WORKER_PREFIX + hostname


def lease_key(job_id: str) -> str:
    return LEASE_PREFIX + job_id


def holder_name(hostname: str, pid: int | None = None) -> str:
    return f"{hostname}|{os.getpid() if pid is None else pid}"


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


def acquire_lease(settings: Settings, job_id: str, holder: str) -> bool:
    """Take the job's lease for ``holder``. False when another live process holds it. A lease left by a dead
    process on this same host (a pool child killed mid-job whose message came straight back) is taken over."""
    r = redis_client(settings)
    key = lease_key(job_id)
    if r.set(key, holder, nx=True, ex=LEASE_TTL_S):
        return True
    current = r.get(key)
    if current is None:
        return bool(r.set(key, holder, nx=True, ex=LEASE_TTL_S))
    host, _, pid = current.rpartition("|")
    mine, _, _ = holder.rpartition("|")
    if host == mine and pid.isdigit() and not _pid_alive(int(pid)):
        # compare-and-set: only replace the dead holder's value
        swapped = r.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) end return nil",
            1,
            key,
            current,
            holder,
            LEASE_TTL_S,
        )
        return bool(swapped)
    return False


def release_lease(settings: Settings, job_id: str, holder: str) -> None:
    redis_client(settings).eval(_RELEASE, 1, lease_key(job_id), holder)


def worker_lost_error(attempts: int) -> dict[str, str]:
    """The error of a job whose workers died ``attempts`` times while running it."""
    return {
        "error_code": "worker_lost",
        "error": (
            f"The worker stopped while segmenting this image {attempts} times (the limit is {MAX_ATTEMPTS}); "
            "the image may need more memory than a worker has."
        ),
    }


def reap(settings: Settings) -> list[str]:
    """Put running jobs whose lease expired back into the waiting queue, or fail them after MAX_ATTEMPTS.

    Returns the ids of the jobs changed (their new state is published). Safe to run in many processes at
    once: each change is a conditional UPDATE that only applies to a row still running the same task.
    """
    from sqlalchemy import select, update

    from backend.storage.db import session_scope
    from backend.storage.models import FAILED, QUEUED, RUNNING, WAITING, Job, utcnow

    from .events import publish_job

    r = redis_client(settings)
    changed: list[str] = []
    with session_scope(engine(settings)) as session:
        changed += _requeue_lost_messages(settings, session)
        running = session.execute(
            select(Job.id, Job.celery_task_id, Job.attempts).where(Job.state == RUNNING)
        )
        for job_id, task_id, attempts in running.all():
            if r.exists(lease_key(job_id)):
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
    from .celery_app import QUEUE

    r = redis_client(settings)
    pipe = r.pipeline()
    pipe.lrange(QUEUE, 0, -1)
    pipe.hvals(UNACKED_KEY)
    queued, held = pipe.execute()
    return "\n".join([*queued, *held])


def _requeue_lost_messages(settings: Settings, session) -> list[str]:
    """Put back to waiting the dispatched, not started jobs whose message the broker no longer has."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from backend.storage.models import QUEUED, Job, utcnow

    cutoff = utcnow() - timedelta(seconds=LOST_MESSAGE_GRACE_S)
    candidates = session.execute(
        select(Job.id, Job.celery_task_id).where(
            Job.state == QUEUED, Job.dispatched_at.is_not(None), Job.dispatched_at < cutoff
        )
    ).all()
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


class Heartbeat(threading.Thread):
    """Keeps this worker process's heartbeat and job leases alive; runs the reaper and the dispatcher.

    ``hold(job_id)`` / ``drop(job_id)`` add and remove leases refreshed by this thread.
    """

    def __init__(self, settings: Settings, hostname: str):
        super().__init__(name="maskweb-heartbeat", daemon=True)
        self.settings = settings
        self.hostname = hostname
        self.holder = holder_name(hostname)
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self.info = json.dumps(
            {"pid": os.getpid(), "model_config": str(settings.model_config), "started_at": round(time.time())}
        )

    def hold(self, job_id: str) -> bool:
        """Take the job's lease (False if another live process holds it) and keep it fresh."""
        if not acquire_lease(self.settings, job_id, self.holder):
            return False
        with self._held_lock:
            self._held.add(job_id)
        return True

    def drop(self, job_id: str) -> None:
        with self._held_lock:
            self._held.discard(job_id)
        release_lease(self.settings, job_id, self.holder)

    def beat(self) -> None:
        r = redis_client(self.settings)
        r.set(worker_key(self.hostname), self.info, ex=WORKER_TTL_S)
        with self._held_lock:
            held = list(self._held)
        for job_id in held:
            r.eval(_REFRESH, 1, lease_key(job_id), self.holder, LEASE_TTL_S)

    def stop(self) -> None:
        self._stop.set()
        try:
            redis_client(self.settings).delete(worker_key(self.hostname))
        except Exception:
            log.debug("could not remove the heartbeat key", exc_info=True)

    def run(self) -> None:
        from .dispatch import pump

        since_reap = REAP_INTERVAL_S  # reap on the first round: a restarted worker recovers its jobs early
        while not self._stop.is_set():
            try:
                self.beat()
                since_reap += HEARTBEAT_S
                if since_reap >= REAP_INTERVAL_S:
                    since_reap = 0
                    reap(self.settings)
                    pump(self.settings)  # hands out the jobs just put back, and anything waiting
            except Exception:
                log.warning("heartbeat round failed; retrying in %ss", HEARTBEAT_S, exc_info=True)
            self._stop.wait(HEARTBEAT_S)
