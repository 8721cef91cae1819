"""``activity.RequestActivity``: requests in flight and the lull background work waits for; the preparer's use
of it. Real Flask app and file store, no fakes."""

from __future__ import annotations

import io
import threading
import time

from PIL import Image

from backend.storage.files import JobFile
from backend.web.activity import RequestActivity
from backend.web.preparing import EXTENSION as PREPARER


def _wsgi(block: threading.Event | None = None):
    def app(environ, start_response):
        if block is not None:
            block.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def _call(activity: RequestActivity, path: str = "/api/jobs") -> None:
    activity({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda *a: None)


def test_a_request_in_flight_holds_background_work_until_a_lull_follows_it():
    release = threading.Event()
    activity = RequestActivity(_wsgi(release))
    request = threading.Thread(target=_call, args=(activity,))
    request.start()
    while activity.in_flight == 0:
        time.sleep(0.001)
    assert activity.quiet_for() == 0.0
    assert activity.wait_quiet(0.05, max_wait_s=0.2) is False  # still in flight: gave up at the limit
    release.set()
    request.join()
    assert activity.wait_quiet(0.05, max_wait_s=5) is True
    assert time.monotonic() - activity.last_end >= 0.05  # waited for the lull, not just the end


def test_socket_connections_are_not_requests():
    held = threading.Event()
    activity = RequestActivity(_wsgi(held))
    socket = threading.Thread(target=_call, args=(activity, "/socket.io/"))
    socket.start()
    time.sleep(0.05)
    assert activity.in_flight == 0 and activity.wait_quiet(0.0, max_wait_s=1) is True
    held.set()
    socket.join()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_uploads_are_prepared_after_the_requests_not_while(app, settings, visitor, monkeypatch):
    from backend.web import preparing

    monkeypatch.setattr(preparing, "QUIET_S", 0.3)
    activity = app.wsgi_app
    while not isinstance(activity, RequestActivity):  # under the other middlewares
        activity = activity.wsgi_app if hasattr(activity, "wsgi_app") else activity.app
    (job,) = visitor.upload((_png(), "a.png"))
    store = app.extensions["maskweb"].files
    answered = time.monotonic()
    while not store.exists(job["id"], JobFile.THUMBNAIL):
        assert time.monotonic() - answered < 10
        time.sleep(0.01)
    assert time.monotonic() - answered >= 0.25  # the lull after the upload's own request
    assert app.extensions[PREPARER].activity is activity


def test_a_site_that_is_never_quiet_still_gets_an_uploads_images_prepared(tmp_path, monkeypatch):
    from backend.storage.files import LocalFileStore
    from backend.storage.models import new_id
    from backend.web import preparing
    from backend.web.decoding import DecodeGate

    monkeypatch.setattr(preparing, "MAX_QUIET_WAIT_S", 1.0)
    busy = threading.Event()
    activity = RequestActivity(_wsgi(busy))
    request = threading.Thread(target=_call, args=(activity,))  # in flight for the whole test
    request.start()
    store = LocalFileStore(tmp_path)
    ids = [new_id() for _ in range(4)]
    store.save_uploads([(job_id, io.BytesIO(_png())) for job_id in ids])
    preparer = preparing.Preparer(store, DecodeGate(1 << 30, 2, 10), 40_000_000, activity)
    started = time.monotonic()
    preparer.schedule(ids)
    try:
        while not all(store.exists(job_id, JobFile.THUMBNAIL) for job_id in ids):
            assert time.monotonic() - started < 3.0, "each image waited out the limit on its own"
            time.sleep(0.02)
        assert time.monotonic() - started >= 0.9  # it did wait for a lull first
    finally:
        busy.set()
        request.join()
