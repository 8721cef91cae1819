"""The main flow with the real parts: upload -> live events over WebSocket -> done -> result and overlay."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from .stack import png_bytes

STAGES = ("decode", "model", "masks", "saving")


def _check_main_flow(stack):
    user = stack.user()
    stack.hold("model")  # so the subscription below is in place before the job passes decode
    job = user.upload(png_bytes(80, 60), names=["shapes.png"])[0]
    assert job["state"] in ("queued", "running") and job["filename"] == "shapes.png"  # a free worker is quick

    with user.socket() as watcher:
        ack = watcher.subscribe({"job_id": job["id"]})
        assert ack["ok"] is True and ack["job"]["state"] in ("queued", "running")
        stack.release("model")
        events = [ack["job"], *watcher.until(job["id"], lambda e: e["state"] in ("done", "failed"), 180)]
    final = events[-1]
    assert final["state"] == "done", final
    seen_stages = [e["stage"] for e in events if e["state"] == "running"]
    assert [s for s in STAGES if s in seen_stages] == list(STAGES), seen_stages
    assert seen_stages == sorted(seen_stages, key=STAGES.index)  # never back to an earlier stage
    assert isinstance(final.pop("emitted_at"), float)  # events are stamped by their publisher
    # The last event is the job as GET says it, less `share` (its owner's own, never sent to a room).
    state = {key: value for key, value in user.job(job["id"]).items() if key != "share"}
    assert final == state | {"queue_position": final["queue_position"]}
    assert final["instance_count"] is not None and set(final["timings"]) >= set(STAGES)

    result = user.get(f"/api/jobs/{job['id']}/result").json()
    assert (result["width"], result["height"]) == (80, 60)
    assert len(result["instances"]) == final["instance_count"]
    for inst in result["instances"]:
        assert inst["class_name"] in ("circle", "square", "triangle")
        assert inst["mask"]["size"] == [60, 80]
    overlay = user.get(final["urls"]["overlay"])
    assert overlay.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(overlay.content)).size == (80, 60)

    row = stack.db_jobs(job["id"])[job["id"]]
    assert row["attempts"] == 1 and row["started_at"] is not None and row["dispatched_at"] is not None


def test_upload_events_result_sqlite(stack):
    _check_main_flow(stack)


@pytest.mark.slow
def test_upload_events_result_postgres(pg_stack):
    _check_main_flow(pg_stack)


def test_worker_durations_reach_metrics(stack):
    user = stack.user()
    job = user.upload(png_bytes(32, 24))[0]
    assert user.wait(job["id"])["state"] == "done"
    text = user.get("/metrics").text
    done_count = [
        line
        for line in text.splitlines()
        if line.startswith('maskweb_job_duration_seconds_count{outcome="done"}')
    ]
    assert done_count and float(done_count[0].split()[-1]) >= 1
    model_count = [
        line for line in text.splitlines() if line.startswith("maskweb_model_duration_seconds_count")
    ]
    assert model_count and float(model_count[0].split()[-1]) >= 1
