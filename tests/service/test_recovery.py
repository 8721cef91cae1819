"""A worker that dies mid-job: the job comes back and completes exactly once; one that keeps dying fails."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.jobs.leases import LOST_MESSAGE_GRACE_S
from backend.jobs.lifecycle import claim
from backend.storage.db import make_engine, session_scope
from backend.storage.models import RUNNING, Job, utcnow

from .stack import png_bytes


@pytest.mark.slow
def test_kill_9_of_the_worker_mid_job_then_restart_completes_exactly_once(stack):
    user = stack.user()
    stack.hold("masks")
    first, second = (j["id"] for j in user.upload(png_bytes(56, 40, seed=1), png_bytes(40, 56, seed=2)))
    with user.socket() as watcher:
        watcher.subscribe({"job_id": first})
        watcher.until(first, lambda e: e["state"] == "running" and e["stage"] == "model", 120)
        old_task_id = stack.db_jobs(first)[first]["celery_task_id"]

        stack.kill_worker()
        stack.release("masks")
        assert user.job(first)["state"] == "running"  # nobody has noticed yet: the row still says running
        stack.start_worker()
        events = watcher.until(first, lambda e: e["state"] == "done", 240)
    assert user.wait(second)["state"] == "done"  # the job queued behind it was not lost either

    done_events = [e for e in events if e["state"] == "done"]
    assert len(done_events) == 1
    states = [e["state"] for e in events]
    assert "queued" in states[states.index("running") :]  # it went back to the queue, then ran again
    row = stack.db_jobs(first)[first]
    assert row["state"] == "done" and row["attempts"] == 2 and row["error_code"] is None
    assert row["celery_task_id"] != old_task_id
    result = user.get(f"/api/jobs/{first}/result").json()
    assert len(result["instances"]) == row["instance_count"]
    assert [j["id"] for j in user.get("/api/jobs").json()["jobs"]].count(first) == 1

    # the killed worker's message, should kombu ever restore it, is recognised as stale and changes nothing
    published = []
    assert claim(stack.settings, first, old_task_id, published.append) is None and published == []
    assert stack.db_jobs(first)[first]["attempts"] == 2


def test_a_job_that_keeps_killing_workers_fails_with_a_reason(stack):
    user = stack.user()
    engine = make_engine(stack.settings.database_url)
    try:
        with session_scope(engine) as session:
            job = Job(
                user_id=user.user_id,
                state=RUNNING,
                stage="model",
                filename="crasher.png",
                dispatched_at=utcnow(),
                started_at=utcnow(),
                attempts=3,  # its third start also died: no worker holds its lease
                celery_task_id="f" * 32,
            )
            session.add(job)
    finally:
        engine.dispose()
    final = user.wait(job.id, timeout_s=120)  # the live worker's reaper finds it
    assert final["state"] == "failed" and final["error_code"] == "worker_lost"
    assert "3 times" in final["error"]


def test_a_dispatched_job_whose_message_was_lost_is_dispatched_again(stack):
    """Redis lost the message (a restart without persistence): the job must not wait forever."""
    from PIL import Image

    from backend.storage.files import open_file_store

    user = stack.user()
    engine = make_engine(stack.settings.database_url)
    try:
        with session_scope(engine) as session:
            job = Job(
                user_id=user.user_id,
                filename="orphan.png",
                width=36,
                height=28,
                dispatched_at=utcnow() - timedelta(seconds=LOST_MESSAGE_GRACE_S + 60),
                celery_task_id="e" * 32,  # a message nobody will ever deliver
            )
            session.add(job)
            session.flush()
            open_file_store(stack.settings).save_original(job.id, Image.new("RGB", (36, 28), (9, 99, 199)))
    finally:
        engine.dispose()
    final = user.wait(job.id, timeout_s=120)
    assert final["state"] == "done"
    row = stack.db_jobs(job.id)[job.id]
    assert row["attempts"] == 1 and row["celery_task_id"] != "e" * 32


@pytest.mark.slow
def test_a_pool_process_killed_mid_job_is_replaced_and_the_job_completes(stack):
    """The worker's parent survives: Celery puts the message back at once and a new pool process takes the
    lease of its dead predecessor on the same host."""
    user = stack.user()
    stack.hold("masks")
    job = user.upload(png_bytes(44, 36, seed=3))[0]
    user.wait(job["id"], states=("running",))
    stack.kill_pool_process()
    stack.release("masks")
    final = user.wait(job["id"], timeout_s=240)
    assert final["state"] == "done"
    assert stack.db_jobs(job["id"])[job["id"]]["attempts"] == 2
