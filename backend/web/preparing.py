"""The web process's side of ``backend.storage.originals``: new uploads become their original and thumbnail
in the background, and a request for one of those files that comes first prepares it on the spot.

``Preparer.schedule(job_ids)`` is called once an upload's jobs are committed; it returns at once and a
background thread (a greenlet under gevent) prepares them one after another, each once the process has had no
HTTP request in flight for ``QUIET_S`` (``activity.RequestActivity``), so a burst of uploads is answered before
its images are encoded rather than while; ``MAX_QUIET_WAIT_S`` after the upload, its images stop waiting for a
lull, however busy the process stays. ``Preparer.ensure(job_id)`` is what
a file request calls when the file is not there yet. Within this process a job is prepared once: a second
caller waits for the first (single flight). Both go through the process's ``DecodeGate``, so preparing counts
against the same decoding budget as uploads, and the encoding always runs off the event loop (on gevent's
thread pool), so a burst of uploads is not answered at the encoder's pace.

Failures are logged, not raised, in the background: the upload stays, and the next reader (a request, the
worker) prepares it. ``ensure`` raises them to its request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from flask import current_app

from backend.storage.files import FileStore
from backend.storage.originals import prepare, stored_limits

from .activity import RequestActivity
from .decoding import DecodeGate
from .services import app_services

log = logging.getLogger(__name__)
QUIET_S = 0.1
MAX_QUIET_WAIT_S = 10.0


class Preparer:
    """Prepares jobs' originals and thumbnails from their uploads in ``store``, through ``gate``."""

    def __init__(
        self, store: FileStore, gate: DecodeGate, max_pixels: int, activity: RequestActivity | None = None
    ):
        self.store, self.gate, self.activity = store, gate, activity
        self.limits = stored_limits(max_pixels)
        self._lock = threading.Lock()
        self._running: dict[str, threading.Event] = {}

    def ensure(self, job_id: str) -> None:
        """Return once the job has no upload left to prepare (prepared here, by another caller, or by another
        process). Raises ``ImageRejected``, ``DecodeRefused`` and the store's errors."""
        with self._lock:
            running = self._running.get(job_id)
            if running is None:
                done = self._running[job_id] = threading.Event()
        if running is not None:
            running.wait()
            return
        try:
            prepare(self.store, job_id, self.limits, self._admit)
        finally:
            with self._lock:
                del self._running[job_id]
            done.set()

    def _admit(self, cost: int, work):
        # Encoding is the slow part (a 12 MP PNG: about a second): never on the event loop, even for a small image.
        return self.gate.run(cost, work, background=True)

    def schedule(self, job_ids: Iterable[str]) -> None:
        """Prepare ``job_ids`` in the background, in order."""
        ids = list(job_ids)
        if ids:
            threading.Thread(
                target=self._prepare_all, args=(ids,), name="prepare-uploads", daemon=True
            ).start()

    def _prepare_all(self, job_ids: list[str]) -> None:
        # One limit for the whole upload, not one per image: a site that is never quiet still gets them all.
        deadline = time.monotonic() + MAX_QUIET_WAIT_S
        for job_id in job_ids:
            if self.activity is not None:
                self.activity.wait_quiet(QUIET_S, max(0.0, deadline - time.monotonic()))
            try:
                self.ensure(job_id)
            except Exception:
                log.warning(
                    "could not prepare the upload of job %s yet; its next reader will", job_id, exc_info=True
                )


EXTENSION = "maskweb_preparer"


def init_preparing(app, gate: DecodeGate, activity: RequestActivity | None = None) -> Preparer:
    services = app_services(app)
    preparer = Preparer(services.files, gate, services.settings.max_pixels, activity)
    app.extensions[EXTENSION] = preparer
    return preparer


def preparer() -> Preparer:
    return current_app.extensions[EXTENSION]
