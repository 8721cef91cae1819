"""ModelBatcher: how concurrent jobs' images are gathered into model calls, and how failures stay with their job.

Unit tests of one module: ``run_batch`` is a plain function recording its calls (the real model is exercised by
the worker tests in test_flow.py).
"""

from __future__ import annotations

import queue
import threading
import time

import pytest

from backend.jobs.batching import ModelBatcher, batch_size_for, gather


class Recorder:
    """A run_batch that doubles numbers, records each call's images, and refuses negative ones."""

    def __init__(self):
        self.calls: list[list[int]] = []

    def __call__(self, images, progress):
        self.calls.append(list(images))
        progress("model", 0.0)
        if any(image < 0 for image in images):
            raise ValueError(f"cannot segment {min(images)}")
        progress("model", 1.0)
        return [image * 2 for image in images]


def submit_together(batcher: ModelBatcher, images, progress=None) -> dict:
    """Submit ``images`` from one thread each, all at once; {image: result or the exception raised}."""
    outcomes, start = {}, threading.Barrier(len(images))

    def job(image):
        start.wait()
        try:
            outcomes[image] = batcher.submit(image, progress(image) if progress else None)
        except Exception as exc:
            outcomes[image] = exc

    threads = [threading.Thread(target=job, args=(image,)) for image in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return outcomes


def test_concurrent_images_share_one_call_and_each_gets_its_own_result():
    run, sizes = Recorder(), []
    batcher = ModelBatcher(run, max_batch=4, max_wait_s=0.5, on_batch=sizes.append)
    try:
        assert submit_together(batcher, [1, 2, 3, 4]) == {1: 2, 2: 4, 3: 6, 4: 8}
    finally:
        batcher.close()
    assert sizes == [4] and sorted(run.calls[0]) == [1, 2, 3, 4]


def test_a_batch_never_exceeds_the_batch_size():
    run = Recorder()
    batcher = ModelBatcher(run, max_batch=2, max_wait_s=0.5)
    try:
        assert submit_together(batcher, [1, 2, 3, 4, 5]) == {i: 2 * i for i in range(1, 6)}
    finally:
        batcher.close()
    assert sorted(len(call) for call in run.calls) in ([1, 2, 2], [1, 1, 1, 2], [1, 1, 1, 1, 1])
    assert all(len(call) <= 2 for call in run.calls)
    assert sorted(i for call in run.calls for i in call) == [1, 2, 3, 4, 5]


def test_a_lone_image_waits_at_most_the_wait_setting():
    run = Recorder()
    batcher = ModelBatcher(run, max_batch=8, max_wait_s=0.05)
    try:
        started = time.monotonic()
        assert batcher.submit(21) == 42
        assert time.monotonic() - started < 2.0  # the 50 ms wait plus thread hand-offs, not a batch's worth
    finally:
        batcher.close()
    assert run.calls == [[21]]


def test_a_bad_image_fails_alone_and_the_others_get_their_results():
    run = Recorder()
    batcher = ModelBatcher(run, max_batch=3, max_wait_s=0.5)
    try:
        outcomes = submit_together(batcher, [5, -1, 7])
    finally:
        batcher.close()
    assert outcomes[5] == 10 and outcomes[7] == 14
    assert isinstance(outcomes[-1], ValueError) and str(outcomes[-1]) == "cannot segment -1"
    assert len(run.calls[0]) == 3 and sorted(map(len, run.calls[1:])) == [1, 1, 1]  # then one by one


def test_a_job_whose_progress_raises_gets_that_error_and_the_batch_goes_on():
    class Cancelled(Exception):
        pass

    seen = {}

    def progress_for(image):
        def progress(stage, fraction):
            seen.setdefault(image, []).append((stage, fraction))
            if image == 3:
                raise Cancelled(f"job {image} cancelled")

        return progress

    batcher = ModelBatcher(Recorder(), max_batch=2, max_wait_s=0.5)
    try:
        outcomes = submit_together(batcher, [3, 4], progress_for)
    finally:
        batcher.close()
    assert outcomes[4] == 8 and seen[4] == [("model", 0.0), ("model", 1.0)]
    assert isinstance(outcomes[3], Cancelled) and seen[3] == [("model", 0.0)]  # not told again once it raised


def test_gather_takes_what_waits_up_to_the_batch_size_and_stops_at_close():
    waiting = queue.Queue()
    for item in ("b", "c", "d"):
        waiting.put(item)
    assert gather(waiting, "a", max_batch=3, max_wait_s=0.0) == (["a", "b", "c"], False)
    assert gather(waiting, "x", max_batch=3, max_wait_s=0.0) == (["x", "d"], False)
    waiting.put(None)
    assert gather(waiting, "y", max_batch=3, max_wait_s=1.0) == (["y"], True)


def test_settings_out_of_range_are_refused():
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        ModelBatcher(Recorder(), max_batch=0, max_wait_s=0.0)
    with pytest.raises(ValueError, match="max_wait_s must not be negative"):
        ModelBatcher(Recorder(), max_batch=1, max_wait_s=-1.0)


def test_batch_size_is_the_setting_or_the_device_default():
    assert batch_size_for(0, "cpu") == 1 and batch_size_for(0, "cpu-bf16") == 1
    assert batch_size_for(0, "gpu") == 8
    assert batch_size_for(16, "cpu") == 16
    with pytest.raises(
        ValueError, match="MASKWEB_BATCH_SIZE must be 0 .per device. or a positive count, got -2"
    ):
        batch_size_for(-2, "gpu")
