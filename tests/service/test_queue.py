"""The fair queue with a real worker: start order across users, live positions, cancel waiting and running.

Holds (``stack.hold(stage)``) keep the worker's current job before a stage, so what is queued behind it is
known exactly: the tests assert orders and states, never timings.
"""

from __future__ import annotations

from .stack import png_bytes


def _start_order(stack, job_ids):
    rows = stack.db_jobs(*job_ids)
    started = [r for r in rows.values() if r["started_at"] is not None]
    return [r["id"] for r in sorted(started, key=lambda r: r["started_at"])]


def test_one_users_batch_does_not_hold_back_another_user(stack):
    assert stack.settings.max_inflight_per_user == 2
    alice, bob = stack.user(), stack.user()
    stack.hold("model")
    uploaded = [j["id"] for j in alice.upload(*(png_bytes(32, 32, seed=i) for i in range(5)))]
    rows = stack.db_jobs(*uploaded)
    a = sorted(uploaded, key=lambda j: (rows[j]["created_at"], j))  # a user's own jobs go oldest first
    alice.wait(
        a[0], states=("running",)
    )  # a[0] runs (held), a[1] is inside Celery, a[2:] wait in the database
    b = bob.upload(png_bytes(32, 32, seed=9))[0]
    assert bob.queue_position(b["id"]) == 2  # behind a[1], which was already handed to Celery

    positions = {j: alice.job(j)["queue_position"] for j in a[1:]}  # stored by the round that saw b
    assert positions == {a[1]: 1, a[2]: 3, a[3]: 4, a[4]: 5}

    with alice.socket() as watcher:
        assert watcher.subscribe({"job_id": a[4]})["job"]["queue_position"] == 5
        cancelled = alice.post(f"/api/jobs/{a[2]}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        # the jobs behind the cancelled one move up, live
        watcher.until(a[4], lambda e: e["state"] == "queued" and e["queue_position"] == 4, 30)
        stack.release("model")
        events = watcher.until(a[4], lambda e: e["state"] == "done", 300)

    queued_positions = [e["queue_position"] for e in events if e["state"] == "queued"]
    assert queued_positions == sorted(queued_positions, reverse=True) and queued_positions[-1] >= 1
    assert [e["state"] for e in events if e["state"] != "queued"][-1] == "done"

    for job_id in (*a, b["id"]):
        alice_or_bob = bob if job_id == b["id"] else alice
        alice_or_bob.wait(job_id)
    order = _start_order(stack, [*a, b["id"]])
    assert order == [a[0], a[1], b["id"], a[3], a[4]]  # bob's single image is third, not last
    cancelled_row = stack.db_jobs(a[2])[a[2]]
    assert cancelled_row["state"] == "cancelled" and cancelled_row["started_at"] is None
    assert cancelled_row["attempts"] == 0


def test_cancel_running_job_stops_at_a_stage_boundary(stack):
    user = stack.user()
    stack.hold("masks")
    job = user.upload(png_bytes(48, 48))[0]
    with user.socket() as watcher:
        watcher.subscribe({"job_id": job["id"]})
        watcher.until(job["id"], lambda e: e["state"] == "running" and e["stage"] == "model", 120)
        response = user.post(f"/api/jobs/{job['id']}/cancel")
        assert response.status_code == 202 and response.json()["cancel_requested"] is True
        stack.release("masks")
        events = watcher.until(job["id"], lambda e: e["state"] in ("done", "failed", "cancelled"), 120)
    final = events[-1]
    assert final["state"] == "cancelled" and final["error_code"] == "cancelled"
    assert "masks" not in [e["stage"] for e in events]
    assert user.get(f"/api/jobs/{job['id']}/result").status_code == 409
    assert not (stack.settings.data_dir / "jobs" / job["id"] / "result.json").exists()
    assert not (stack.settings.data_dir / "jobs" / job["id"] / "overlay.png").exists()
    assert stack.db_jobs(job["id"])[job["id"]]["attempts"] == 1


def test_failing_job_gets_a_clear_reason(stack):
    user = stack.user()
    stack.hold("model")
    blocker = user.upload(png_bytes(32, 32))[0]
    user.wait(blocker["id"], states=("running",))
    broken = user.upload(png_bytes(40, 40))[0]
    user.prepared(broken)
    # the stored original goes bad while the job waits (a disk error, an operator's mistake)
    (stack.settings.data_dir / "jobs" / broken["id"] / "original.png").write_bytes(
        b"\x89PNG\r\n\x1a\n garbage"
    )
    stack.release("model")
    final = user.wait(broken["id"])
    assert final["state"] == "failed"
    assert final["error_code"] == "bad_image" and "could not be read" in final["error"]
    assert final["stage"] is None and final["urls"]["result"] is None
    assert not (stack.settings.data_dir / "jobs" / broken["id"] / "result.json").exists()
    assert user.wait(blocker["id"])["state"] == "done"  # one bad image does not stop the worker
