"""Dispatcher rounds after jobs, with a deep queue: how fast can workers go when every finished job asks for one?

    python tests/load/worker_rounds.py                    # 4 workers, 0.1 s jobs, 10,000 waiting, 20 s a way
    python tests/load/worker_rounds.py --workers 1 --job-s 0.5

``--workers`` simulated workers (threads, as the model calls of GPU workers would leave the interpreter free)
each finish a job every ``--job-s`` seconds and then ask for a dispatcher round, with ``--queued`` jobs of a
tenth as many users waiting, two ways in turn:

- ``in_job_thread``: the round runs before the worker's next job (how workers ran them before their
  maintenance thread did);
- ``maintenance_thread``: the worker asks its own ``leases.Heartbeat`` (``request_round``) and goes on.

Per way: jobs per second (at most ``workers / job_s``) and the rounds run. Before both, ``one_round``: the cost
of a round on its own (no workers), each after ``--finishing`` handed-out jobs finished, so that every waiting
job's position moves (median wall and CPU milliseconds of ``--round-samples``). Real rounds (``dispatch.pump``) on
a private Redis (lock, positions, broker: the handed-out jobs' messages stay in it, no worker takes them) and a
SQLite database in a temporary folder. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS.parent), str(TESTS)]

from backend.cli.processes import PrivateRedis  # noqa: E402
from backend.jobs import dispatch, leases  # noqa: E402
from backend.jobs.connections import redis_client  # noqa: E402
from backend.settings import Settings  # noqa: E402
from backend.storage.db import migrate  # noqa: E402
from load.scenarios import seed_queue  # noqa: E402


def play(settings: Settings, workers: int, job_s: float, seconds: float, in_job_thread: bool) -> dict:
    client = redis_client(settings)
    stop_at = time.monotonic() + seconds
    finished = [0] * workers
    heartbeats = [] if in_job_thread else [leases.Heartbeat(settings, f"sim-{i}") for i in range(workers)]
    for heartbeat in heartbeats:
        heartbeat.start()

    def worker(index: int) -> None:
        while time.monotonic() < stop_at:
            time.sleep(job_s)
            finished[index] += 1
            if in_job_thread:
                dispatch.pump(settings)
            else:
                heartbeats[index].request_round()

    started = int(client.get(dispatch.STARTED_KEY) or 0)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rounds = int(client.get(dispatch.STARTED_KEY) or 0) - started
    for heartbeat in heartbeats:
        heartbeat.stop()
        heartbeat.join(60)
    return {"jobs_per_s": round(sum(finished) / seconds, 1), "rounds": rounds}


def one_round(settings: Settings, samples: int, finishing: int) -> dict:
    """Median wall and CPU (this process) milliseconds of a round, each after ``finishing`` of the jobs it
    handed out were marked done (the dispatcher's usual case: jobs ahead left, everyone behind moves up)."""
    from sqlalchemy import select, update

    from backend.storage.db import make_engine, session_scope
    from backend.storage.models import DONE, QUEUED, Job

    engine = make_engine(settings.database_url)
    walls, cpus = [], []
    try:
        for _ in range(samples):
            with session_scope(engine) as db:
                done = db.scalars(
                    select(Job.id).where(Job.state == QUEUED, Job.dispatched_at.is_not(None)).limit(finishing)
                ).all()
                db.execute(update(Job).where(Job.id.in_(done)).values(state=DONE, stage=None))
            wall, cpu = time.perf_counter(), time.process_time()
            dispatch.pump(settings)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    finally:
        engine.dispose()
    return {
        "wall_ms_p50": round(1000 * statistics.median(walls), 1),
        "cpu_ms_p50": round(1000 * statistics.median(cpus), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--job-s", type=float, default=0.1, help="seconds a simulated job takes")
    parser.add_argument("--seconds", type=float, default=20, help="how long each way is played")
    parser.add_argument("--queued", type=int, default=10000, help="jobs waiting (10 per user)")
    parser.add_argument("--round-samples", type=int, default=20, help="rounds timed on their own")
    parser.add_argument("--finishing", type=int, default=4, help="jobs finished before each timed round")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="maskweb-rounds-") as tmp:
        root = Path(tmp)
        server = PrivateRedis(root / "redis").start()
        try:
            url = f"sqlite:///{root / 'maskweb.db'}"
            migrate(url)
            settings = Settings(data_dir=root / "data", database_url=url, redis_url=server.url)
            seed_queue(settings, args.queued // 10, 10)
            # the first round publishes every first position (all of them at once here: the rounds measured
            # below should not be the ones that work off that backlog, ``MAX_NEWS_PER_ROUND`` at a time)
            bound, dispatch.MAX_NEWS_PER_ROUND = dispatch.MAX_NEWS_PER_ROUND, args.queued
            dispatch.pump(settings)
            dispatch.MAX_NEWS_PER_ROUND = bound
            report = {
                "queued_jobs": args.queued // 10 * 10,
                "workers": args.workers,
                "job_s": args.job_s,
                "most_jobs_per_s": round(args.workers / args.job_s, 1),
            }
            report["one_round"] = one_round(settings, args.round_samples, args.finishing)
            for way in ("in_job_thread", "maintenance_thread"):
                report[way] = play(settings, args.workers, args.job_s, args.seconds, way == "in_job_thread")
        finally:
            server.stop()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
