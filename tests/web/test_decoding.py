"""Bounded memory when the web decodes uploads: a budget checked from the header before decoding, a bounded
number of decodes at once (the rest wait, then get 503), and no float64 copy of a 16-bit image."""

from __future__ import annotations

import io
import threading
import tracemalloc

import numpy as np
from PIL import Image
from test_uploads import assert_nothing_stored
from webtools import Visitor, png

from backend.segmentation.images import decode_cost, to_rgb
from backend.web import create_app


def _app(settings, queue):
    return create_app(settings, submit=queue.submit, cancel=queue.cancel)


def _png16(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width), 40000, dtype=np.uint16)).save(buf, "PNG")
    return buf.getvalue()  # a few KB: the cost is in the decoded pixels, not the file


def test_an_image_over_the_decoding_budget_is_refused_before_decoding(settings, queue):
    settings.decode_memory_mb = 8
    app = _app(settings, queue)
    visitor = Visitor(app)
    visitor.upload(png(200, 100))  # small images fit
    settings_cost = decode_cost("I;16", 2000, 1500)
    assert settings_cost > 8 * 1024 * 1024
    body = visitor.upload(png(10, 10), (_png16(2000, 1500), "scan.png"), expect=413)["error"]
    assert body["code"] == "too_much_memory" and body["index"] == 1 and body["filename"] == "scan.png"
    assert body["needed_bytes"] == settings_cost and body["limit_bytes"] == 8 * 1024 * 1024
    assert "decoding budget of 8 MB" in body["message"]


def test_decodes_beyond_the_allowed_number_wait_then_get_503(settings, queue):
    settings.max_concurrent_decodes, settings.decode_wait_s = 1, 0.3
    app = _app(settings, queue)
    gate = app.extensions["maskweb_decode_gate"]
    visitor = Visitor(app)
    busy, release = threading.Event(), threading.Event()

    def occupy():
        gate.run(1, lambda: (busy.set(), release.wait(30)))

    holder = threading.Thread(target=occupy)
    holder.start()
    try:
        assert busy.wait(30)
        response = visitor.post("/api/jobs", data={"image": [(io.BytesIO(png()), "a.png")]})
        assert response.status_code == 503
        body = response.get_json()["error"]
        assert body["code"] == "decoder_busy" and response.headers["Retry-After"] == str(
            body["retry_after_s"]
        )
        assert_nothing_stored(app, settings)
    finally:
        release.set()
        holder.join(30)
    visitor.upload(png())  # the decoder is free again


def test_concurrent_decodes_stay_within_the_budget(settings, queue):
    budget = decode_cost("RGB", 300, 300) * 2 + 1  # room for two at once
    settings.decode_memory_mb = budget / (1024 * 1024)
    settings.max_concurrent_decodes, settings.decode_wait_s = 8, 30
    app = _app(settings, queue)
    gate = app.extensions["maskweb_decode_gate"]
    visitors = [Visitor(app) for _ in range(6)]
    threads = [threading.Thread(target=v.upload, args=(png(300, 300), png(300, 300))) for v in visitors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert gate.peak_reserved <= budget
    assert len(queue.submitted) == 6


def test_16_bit_greyscale_converts_without_float64_copies():
    width, height = 4000, 3000
    image = Image.fromarray(np.full((height, width), 50000, dtype=np.uint16))
    tracemalloc.start()
    try:
        rgb = to_rgb(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rgb.getpixel((0, 0)) == (195, 195, 195)
    # one 8-bit plane (1 byte per pixel) and a strip of working space; a float64 copy alone is 8 bytes per pixel
    assert peak < width * height * 2, peak


def test_under_gevent_only_large_decodes_leave_the_event_loop(monkeypatch):
    """A small image's work runs on the event loop (a thread hand-over costs more than it under load); a large
    one goes to gevent's thread pool so the loop keeps serving."""
    from backend.web import decoding

    offloaded = []
    monkeypatch.setattr(decoding, "offload", lambda work: offloaded.append(work) or work())
    gate = decoding.DecodeGate(budget_bytes=1 << 30, slots=2, wait_s=0)
    here = threading.get_ident()
    assert gate.run(decoding.INLINE_COST_BYTES, threading.get_ident) == here and offloaded == []
    gate.run(decoding.INLINE_COST_BYTES + 1, lambda: None)
    assert len(offloaded) == 1


def test_background_work_yields_to_requests():
    """The preparer's encodes (background) take one slot at most and start only while no request waits."""
    from backend.web.decoding import DecodeGate

    gate = DecodeGate(budget_bytes=1 << 30, slots=2, wait_s=10)
    order, gates = [], {name: threading.Event() for name in ("bg1", "bg2", "req1", "req2")}

    def job(name):
        def work():
            with gate._cond:
                order.append(name)
                gate._cond.notify_all()
            gates[name].wait(10)

        return work

    def start(name, background):
        t = threading.Thread(target=gate.run, args=(1, job(name)), kwargs={"background": background})
        t.start()
        return t

    def until(predicate):
        with gate._cond:
            assert gate._cond.wait_for(predicate, 10)

    threads = [start("bg1", True)]
    until(lambda: order == ["bg1"])
    threads.append(start("bg2", True))  # a second background job waits: one slot at most
    threads.append(start("req1", False))  # a request takes the other slot at once
    until(lambda: order == ["bg1", "req1"])
    threads.append(start("req2", False))  # no slot: the request waits ...
    until(lambda: gate._requests_waiting == 1)
    gates["bg1"].set()  # ... and gets bg1's slot before bg2
    until(lambda: order == ["bg1", "req1", "req2"])
    gates["req1"].set()
    until(lambda: order == ["bg1", "req1", "req2", "bg2"])
    for event in gates.values():
        event.set()
    for t in threads:
        t.join(10)
