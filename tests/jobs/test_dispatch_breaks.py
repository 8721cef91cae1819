"""A dispatcher round in a web process runs on its event loop (gevent): over a deep queue its reading, ordering
and numbering of the jobs are long stretches of CPU with no I/O, and the round must pause between them so the
loop serves the process's other requests and sockets. A gevent-patched interpreter as the web is, real Redis and
SQLite, the real round."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from backend.jobs import dispatch
from backend.storage import queue_order
from backend.storage.db import migrate

TESTS = Path(__file__).resolve().parents[1]

ROUND_IN_A_WEB_PROCESS = """
from gevent import monkey

monkey.patch_all()

import json
import sys
import time

import gevent

sys.path.insert(0, sys.argv[4])
from load.scenarios import seed_queue

from backend.jobs import dispatch
from backend.settings import Settings

settings = Settings(data_dir=sys.argv[1], database_url=sys.argv[2], redis_url=sys.argv[3])
seed_queue(settings, users=300, per_user=10)
dispatch.pump(settings)  # the first round, which publishes every job's first position

spans, ticks = [], []
real_hand_out = dispatch._hand_out


def hand_out(s):
    start = time.perf_counter()
    try:
        return real_hand_out(s)
    finally:
        spans.append((start, time.perf_counter()))


def tick():  # stands for the process's other requests: runs whenever the loop gets to it
    while True:
        ticks.append(time.perf_counter())
        gevent.sleep(0.0005)


dispatch._hand_out = hand_out
gevent.spawn(tick)
gevent.sleep(0.01)
dispatch.pump(settings)
((start, end),) = spans
print(json.dumps({"ticks": sum(start < t < end for t in ticks), "hand_out_ms": 1000 * (end - start)}))
"""


def test_a_round_over_3000_queued_jobs_lets_the_event_loop_run_between_its_steps(tmp_path, private_redis):
    url = f"sqlite:///{tmp_path / 'maskweb.db'}"
    migrate(url)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            ROUND_IN_A_WEB_PROCESS,
            str(tmp_path / "data"),
            url,
            private_redis.url,
            str(TESTS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    # A turn of the loop at each break: after each of the read's two chunks (READ_CHUNK rows), after the pick,
    # after the commit. Without them the loop never runs during the hand-out: SQLite does not yield.
    assert queue_order.READ_CHUNK < 3000 <= 2 * queue_order.READ_CHUNK
    assert seen["ticks"] >= 4, seen


def test_outside_gevent_a_round_does_not_pause(monkeypatch):
    # A worker runs its rounds after its jobs, in their thread: no event loop to serve, so no pause to pay.
    slept = []
    monkeypatch.setattr(dispatch.time, "sleep", slept.append)
    dispatch._let_others_run()
    assert slept == []
