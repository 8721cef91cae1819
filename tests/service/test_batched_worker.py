"""A worker with MASKWEB_BATCH_SIZE > 1, the real parts: several jobs' images go through one model call, each
job keeps its own events and result, and a bad image fails only its own job."""

from __future__ import annotations

import pytest

from backend.jobs.metrics import BATCH, _key

from .stack import Stack, png_bytes


@pytest.fixture
def batching_stack(tmp_path, small_weights, small_model_config):
    # Generous wait: the test machine is shared, and the jobs' threads must meet at the model.
    with Stack.start(
        tmp_path, small_weights, small_model_config, worker=False,
        batch_size=3, batch_wait_ms=10_000, max_inflight_per_user=3,
    ) as running:  # fmt: skip
        yield running


def model_calls(stack: Stack) -> dict:
    """The worker's images-per-model-call histogram, straight from Redis."""
    return stack.redis().hgetall(_key(BATCH))


@pytest.mark.slow
def test_jobs_share_a_model_call_and_a_bad_image_fails_alone(batching_stack):
    stack = batching_stack
    user = stack.user()
    jobs = user.upload(png_bytes(80, 60, seed=1), png_bytes(64, 48, seed=2), png_bytes(72, 72, seed=3))
    # Break one stored original before any worker runs (as a damaged disk would): its decode fails.
    bad = jobs[1]["id"]
    user.prepared(jobs[1])
    (stack.settings.data_dir / "jobs" / bad / "original.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    with user.socket() as watcher:
        for job in jobs:
            assert watcher.subscribe({"job_id": job["id"]})["ok"] is True
        stack.start_worker()  # three job threads take the three queued messages
        finals = {
            job["id"]: watcher.until(job["id"], lambda e: e["state"] in ("done", "failed"), 300)[-1]
            for job in jobs
        }

    assert finals[bad]["state"] == "failed" and finals[bad]["error_code"] == "bad_image"
    good = [job["id"] for job in jobs if job["id"] != bad]
    for job_id, (width, height) in zip(good, [(80, 60), (72, 72)], strict=True):
        assert finals[job_id]["state"] == "done", finals[job_id]
        result = user.get(f"/api/jobs/{job_id}/result").json()
        assert (result["width"], result["height"]) == (width, height)  # each job got its own image's result
        assert len(result["instances"]) == finals[job_id]["instance_count"]
    calls = model_calls(stack)
    # Warm-up and the two good images: the warm-up calls the model directly, so only the jobs' call counts.
    assert int(calls["count"]) == 1 and float(calls["sum"]) == 2.0, calls
