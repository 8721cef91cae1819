"""Bounded image decoding in the web process: how many decodes run at once and how much memory they may use.

An upload's images are decoded (and their files written) one at a time per request, each through
``DecodeGate.run(cost, work)``:

- ``cost`` is the decode's peak memory in bytes, estimated from the header before any pixel is decoded
  (``backend.segmentation.images.decode_cost``: bit depth, mode and size). A cost above the whole budget can never run:
  ``DecodeRefused`` (413 ``too_much_memory``).
- At most ``slots`` decodes run at once and their costs together stay within ``budget_bytes``. A decode that
  finds no room waits up to ``wait_s`` seconds, then gets ``DecodeRefused`` (503 ``decoder_busy``, with
  ``retry_after_s``).
- Under gevent the work of a large image runs on gevent's pool of real threads (Pillow, zlib and fsync release
  the GIL), so the event loop keeps serving websockets and other requests meanwhile; a small one (cost up to
  ``INLINE_COST_BYTES``) runs on the event loop, which is faster than the hand-over. In a threaded server the
  work runs in the request's own thread.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import TypeVar

from flask import current_app

from backend.greenlets import gevent_patched
from backend.segmentation.images import format_bytes

from .services import app_services

T = TypeVar("T")
BUSY_RETRY_S = 5
# Decodes up to this cost (about a quarter megapixel of RGB) run on the event loop itself: a few milliseconds.
# Handing them to a thread costs more than that under load, since every syscall of the work (open, write,
# fsync, rename) has to win the GIL back from the busy event loop, up to a switch interval (5 ms) each time.
INLINE_COST_BYTES = 1 << 20
BACKGROUND_WAIT_FACTOR = 6  # background work waits this many times a request's wait for room, then gives up


class DecodeRefused(Exception):
    """``status`` 413 (``too_much_memory``) or 503 (``decoder_busy``); ``extra`` for the error JSON."""

    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def offload(work: Callable[[], T]) -> T:
    """Run ``work`` off the event loop under gevent (a real thread), else right here."""
    if gevent_patched("threading"):
        import gevent  # lazily: installed and needed only under gunicorn's gevent worker

        return gevent.get_hub().threadpool.apply(work)
    return work()


class DecodeGate:
    """Admission for decodes: ``slots`` at once, ``budget_bytes`` together, ``wait_s`` to wait for room."""

    def __init__(self, budget_bytes: int, slots: int, wait_s: float):
        self.budget_bytes, self.slots, self.wait_s = budget_bytes, max(1, slots), wait_s
        self._cond = threading.Condition()
        self._running = 0
        self._reserved = 0
        self._requests_waiting = 0
        self._background_running = 0
        self.peak_reserved = 0  # the most bytes reserved at once (for tests and the load report)

    def _fits(self, cost: int) -> bool:
        return self._running < self.slots and self._reserved + cost <= self.budget_bytes

    def _fits_background(self, cost: int) -> bool:
        return self._requests_waiting == 0 and self._background_running == 0 and self._fits(cost)

    def run(self, cost: int, work: Callable[[], T], background: bool = False) -> T:
        """Run ``work`` once ``cost`` bytes and a slot are free; raises DecodeRefused (see module docstring).

        ``background`` work (what no request waits for) yields to requests: it takes one slot at most, starts
        only while no request is waiting for room, waits up to ``BACKGROUND_WAIT_FACTOR`` times ``wait_s``,
        and always runs off the event loop, whatever its cost."""
        if cost > self.budget_bytes:
            raise DecodeRefused(
                413,
                "too_much_memory",
                f"Decoding this image needs about {format_bytes(cost)} of memory, over the server's decoding "
                f"budget of {format_bytes(self.budget_bytes)}; send a smaller image or one with fewer bits per "
                "pixel.",
                needed_bytes=cost,
                limit_bytes=self.budget_bytes,
            )
        with self._cond:
            if background:
                fits = self._cond.wait_for(
                    lambda: self._fits_background(cost), self.wait_s * BACKGROUND_WAIT_FACTOR
                )
            else:
                self._requests_waiting += 1
                try:
                    fits = self._cond.wait_for(lambda: self._fits(cost), self.wait_s)
                finally:
                    self._requests_waiting -= 1
            if not fits:
                raise DecodeRefused(
                    503,
                    "decoder_busy",
                    f"The server is decoding other images and had no room for this one within "
                    f"{math.ceil(self.wait_s)} s; try again in a few seconds.",
                    retry_after_s=BUSY_RETRY_S,
                )
            self._running += 1
            self._background_running += background
            self._reserved += cost
            self.peak_reserved = max(self.peak_reserved, self._reserved)
        try:
            return offload(work) if background or cost > INLINE_COST_BYTES else work()
        finally:
            with self._cond:
                self._running -= 1
                self._background_running -= background
                self._reserved -= cost
                self._cond.notify_all()


def init_decoding(app) -> DecodeGate:
    """The web process's gate, sized by the settings (``decode_memory_mb``, ``max_concurrent_decodes``,
    ``decode_wait_s``)."""
    settings = app_services(app).settings
    gate = DecodeGate(settings.decode_memory_bytes, settings.max_concurrent_decodes, settings.decode_wait_s)
    app.extensions["maskweb_decode_gate"] = gate
    return gate


def decode_gate() -> DecodeGate:
    return current_app.extensions["maskweb_decode_gate"]
