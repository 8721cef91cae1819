"""Waiting for SQLite's write lock lets the process's other greenlets run (``backend.storage.sqlite_wait``).

Each case runs in a fresh gevent-patched interpreter, as the web process is, while another process holds the
database's write lock for a while."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()

    import json, subprocess, sys, time

    import gevent
    from sqlalchemy import text

    from backend.storage.db import make_engine

    path, hold_s, timeout_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
    holder = subprocess.Popen(
        [sys.executable, "-c", f'''
    import sqlite3, time
    c = sqlite3.connect({path!r})
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO t VALUES (1)")
    print("held", flush=True)
    time.sleep({hold_s})
    c.commit()
    '''],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    gaps, last, done = [], [time.monotonic()], []

    def tick():
        while not done:
            gevent.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last[0])
            last[0] = now

    ticker = gevent.spawn(tick)
    gevent.sleep(0.05)
    from backend.storage import sqlite_wait

    sqlite_wait.CooperativeConnection.busy_timeout_s = timeout_s
    started = time.monotonic()
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        outcome = "written"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}".splitlines()[0]
    waited = time.monotonic() - started
    done.append(True)
    ticker.join()
    holder.wait()
    with engine.connect() as conn:
        rows = sorted(x for (x,) in conn.execute(text("SELECT x FROM t")))
    print(json.dumps({"outcome": outcome, "waited_s": waited, "longest_gap_s": max(gaps), "rows": rows}))
    """
)


def _probe(tmp_path: Path, hold_s: float, timeout_s: float) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "db.sqlite"), str(hold_s), str(timeout_s)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_write_waiting_for_the_lock_lets_other_greenlets_run(tmp_path):
    report = _probe(tmp_path, hold_s=1.0, timeout_s=30)
    assert report["outcome"] == "written" and report["rows"] == [1, 2]
    assert report["waited_s"] >= 0.5  # it did wait for the other writer
    # SQLite's own busy handler sleeps in C: the ticker stood still for the whole second
    assert report["longest_gap_s"] < 0.25, report


def test_a_lock_held_past_the_timeout_is_the_usual_database_is_locked(tmp_path):
    report = _probe(tmp_path, hold_s=3.0, timeout_s=0.5)
    assert report["outcome"].startswith("OperationalError") and "database is locked" in report["outcome"]
    assert 0.4 <= report["waited_s"] < 2.5, report
    assert report["rows"] == [1]  # nothing half-written
    assert report["longest_gap_s"] < 0.25, report


def test_a_stale_snapshot_is_refused_at_once_not_waited_on(tmp_path):
    """SQLITE_BUSY_SNAPSHOT: this transaction read before another commit, so it can never write; waiting (as for
    a plain busy lock) would only hold the caller for the whole timeout."""
    import sqlite3
    import time

    import pytest

    from backend.storage.sqlite_wait import CooperativeConnection

    def connect():
        conn = sqlite3.connect(
            tmp_path / "db.sqlite", timeout=0, isolation_level=None, factory=CooperativeConnection
        )
        conn.busy_timeout_s = 5.0
        return conn

    writer, reader = connect(), connect()
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x INTEGER)")
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()  # the reader's snapshot
    writer.execute("INSERT INTO t VALUES (1)")  # a commit after it
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError) as refused:
        reader.execute("INSERT INTO t VALUES (2)")
    assert refused.value.sqlite_errorname == "SQLITE_BUSY_SNAPSHOT"
    assert time.monotonic() - started < 1.0
