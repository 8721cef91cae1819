"""Model calls shared by several jobs: the worker's job threads hand in one image each, one thread runs the model.

A worker process runs up to ``settings.batch_size`` (B) jobs at once, each in its own thread with its own state
machine (claim, stages, events, result, failure, cancel: ``backend.jobs.work``). When a job reaches the model
it calls ``ModelBatcher.submit(image, progress)`` and blocks. The batcher's thread takes the first waiting
image, waits at most ``settings.batch_wait_ms`` for more (fewer when B are already there), and runs them in one
``run_batch(images, progress)`` call (``Segmenter.segment_batch``: images of any size share a batch, they mold
to one shape). Each caller gets its own image's result back, in its own thread.

Which jobs wait together is decided before here: the dispatcher hands jobs to Celery in the queue's fair order
(``backend.storage.queue_order``), and a worker takes at most B messages at a time, so a batch holds the next
jobs in that order.

Failure modes, each confined to its own job:
- a call that raises for a batch of several images is retried one image at a time, so the image that breaks
  the model fails its own job only (the others get their results);
- a progress callback that raises (a cancel noticed at a stage boundary, a job handed to another worker) stops
  reporting to that job; the exception is raised in that job's thread when its result would be returned.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
RunBatch = Callable[[Sequence, Progress], list]

# Images per model call when the setting is 0 (per device). A CPU gains nothing from batches (the cores are
# busy with one image: 1.0x images/s at batch 2 in `maskweb bench`) and pays the wait; a GPU is far from busy
# with one 1024x1024 image. 8 is the start of the 8-16 range the issue names: not yet measured on our model
# (scripts/bench-gpu.sh measures batch 1 and 16; set MASKWEB_BATCH_SIZE from its figures).
DEFAULT_BATCH = {"cpu": 1, "cpu-bf16": 1, "gpu": 8, "tpu": 8}


def gpu_present(devices: Path = Path("/dev")) -> bool:
    """Whether this machine has an NVIDIA GPU, without importing a framework (the worker's parent decides its
    pool before any model loads)."""
    return (devices / "nvidia0").exists()


def worker_batch_size(settings) -> int:
    """Images per model call for a worker on this machine (``settings.batch_size``, or the device's default)."""
    return batch_size_for(settings.batch_size, "gpu" if gpu_present() else "cpu")


def batch_size_for(requested: int, device_kind: str) -> int:
    """The batch size a worker uses: ``requested`` (``settings.batch_size``) or, when it is 0, the device's
    default. Raises ValueError for a negative request."""
    if requested < 0:
        raise ValueError(f"MASKWEB_BATCH_SIZE must be 0 (per device) or a positive count, got {requested}")
    return requested or DEFAULT_BATCH.get(device_kind, 1)


@dataclass
class _Waiting:
    """One job's image and how to reach that job: its progress callback and the future its thread waits on."""

    image: object
    progress: Progress | None
    future: Future = field(default_factory=Future)
    progress_error: BaseException | None = None

    def report(self, stage: str, fraction: float) -> None:
        if self.progress is None or self.progress_error is not None:
            return
        try:
            self.progress(stage, fraction)
        except BaseException as exc:  # this job's own problem (cancelled, lost): never the batch's
            self.progress_error = exc


class ModelBatcher:
    """Runs ``run_batch`` on up to ``max_batch`` images at once, gathered from concurrent ``submit`` calls.

    ``run_batch(images, progress)`` returns one result per image, in order; ``progress(stage, fraction)`` is
    forwarded to every job of the batch. ``max_wait_s`` bounds how long the first image of a batch waits for
    others. ``on_batch(size)`` (optional) is told each call's size (metrics, tests).
    """

    def __init__(
        self,
        run_batch: RunBatch,
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[int], None] | None = None,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must not be negative, got {max_wait_s}")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self._waiting: queue.Queue[_Waiting | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="model-batcher", daemon=True)
        self._thread.start()

    def submit(self, image, progress: Progress | None = None):
        """This image's result from the next model call (blocks). Raises what the call raised for this image,
        or what this job's progress callback raised."""
        waiting = _Waiting(image, progress)
        self._waiting.put(waiting)
        result = waiting.future.result()
        if waiting.progress_error is not None:
            raise waiting.progress_error
        return result

    def close(self) -> None:
        """Stop the batcher's thread once the images handed in so far are done."""
        self._waiting.put(None)
        self._thread.join()

    # --- the batcher's thread ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            batch, closing = gather(self._waiting, first, self.max_batch, self.max_wait_s)
            self._run(batch)
            if closing:
                return

    def _run(self, batch: list[_Waiting]) -> None:
        if self.on_batch is not None:
            self.on_batch(len(batch))
        try:
            results = self.run_batch([w.image for w in batch], _broadcast(batch))
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            log.warning("a model call of %d images failed (%s); running them one by one", len(batch), exc)
            for waiting in batch:
                self._run([waiting])
            return
        for waiting, result in zip(batch, results, strict=True):
            waiting.future.set_result(result)


def gather(waiting: queue.Queue, first, max_batch: int, max_wait_s: float) -> tuple[list, bool]:
    """``first`` and whatever else arrives on ``waiting`` within ``max_wait_s`` of now, up to ``max_batch``.

    Returns ``(batch, closing)``; ``closing`` is True when the close marker (None) was met, which ends the
    gathering at once.
    """
    batch = [first]
    deadline = time.monotonic() + max_wait_s
    while len(batch) < max_batch:
        try:
            item = waiting.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False


def _broadcast(batch: list[_Waiting]) -> Progress:
    def progress(stage: str, fraction: float) -> None:
        for waiting in batch:
            waiting.report(stage, fraction)

    return progress


class BatchedSegmenter:
    """The worker's segmenter: ``segment_batch`` called from each job's thread goes through one
    ``ModelBatcher``, so concurrent jobs share model calls. Everything else is the wrapped ``Segmenter``'s."""

    def __init__(self, segmenter, max_wait_s: float, on_batch: Callable[[int], None] | None = None):
        self.segmenter = segmenter
        self.batcher = ModelBatcher(segmenter.segment_batch, segmenter.batch_size, max_wait_s, on_batch)

    def segment_batch(self, images: Sequence, progress: Progress | None = None) -> list:
        """One result per image, each from a shared model call (stages ``model`` and ``masks``)."""
        return [self.batcher.submit(image, progress) for image in images]

    def __getattr__(self, name: str):
        return getattr(self.segmenter, name)
