"""A running job keeps its lease whatever else its worker waits for (issue 10, point 1)."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy.engine import make_url

from backend.jobs.dispatch import LOCK_KEY
from backend.jobs.leases import HEARTBEAT_S, LEASE_TTL_S, lease_key

from .stack import png_bytes


def _lease_stays_while(stack, job_id: str, seconds: float) -> None:
    """Assert the job's lease exists at every look for ``seconds``: the stall outlives the lease's TTL."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert stack.redis().exists(lease_key(job_id)), "the running job lost its lease"
        time.sleep(1)


@pytest.mark.slow
def test_a_long_dispatcher_round_and_database_lock_do_not_take_a_running_job_away(stack):
    if make_url(stack.settings.database_url).get_backend_name() != "sqlite":
        pytest.skip("the database lock below is SQLite's")
    user = stack.user()
    stack.hold("masks")
    job_id = user.upload(png_bytes(48, 40, seed=5))[0]["id"]
    with user.socket() as watcher:
        watcher.subscribe({"job_id": job_id})
        # the model stage is over: the job now waits at the hold and writes nothing until released
        watcher.until(job_id, lambda e: e["stage"] == "model" and e["progress"] == 1.0, 120)

        # The worker's dispatcher round waits for the dispatcher lock, and every database write waits for
        # the lock below, both for longer than a lease lives.
        dispatcher = stack.redis().lock(LOCK_KEY, timeout=LEASE_TTL_S * 3)
        assert dispatcher.acquire(blocking_timeout=30)
        database = sqlite3.connect(make_url(stack.settings.database_url).database, timeout=30)
        try:
            database.execute("BEGIN EXCLUSIVE")
            _lease_stays_while(stack, job_id, LEASE_TTL_S + 2 * HEARTBEAT_S)
        finally:
            database.rollback()
            database.close()
            dispatcher.release()

        # A lease that vanishes (Redis lost it) while the job still runs here is taken back.
        holder = stack.redis().get(lease_key(job_id))
        stack.redis().delete(lease_key(job_id))
        deadline = time.monotonic() + 2 * HEARTBEAT_S
        while stack.redis().get(lease_key(job_id)) != holder:
            assert time.monotonic() < deadline, "the worker did not take its lease back"
            time.sleep(0.2)

        stack.release("masks")
        events = watcher.until(job_id, lambda e: e["state"] in ("done", "failed"), 120)
    states = [e["state"] for e in events]
    assert states[-1] == "done" and "queued" not in states[states.index("running") :]
    row = stack.db_jobs(job_id)[job_id]
    assert row["attempts"] == 1 and row["state"] == "done"
