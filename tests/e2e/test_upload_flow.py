"""The whole product in Chromium against the real stack: upload -> live progress -> viewer -> share.

The stack is H5's (``tests/service/stack.py``): gunicorn with real WebSockets, a Celery worker running the
small Mask R-CNN on generated weights, a private Redis. Points to hover are chosen from the result's decoded
masks.
"""

from __future__ import annotations

import io
import signal
import time

import numpy as np
import pytest
from PIL import Image

from .support import (
    VIEWER_READY,
    artifact,
    interior_point,
    label_text,
    next_frames,
    photo_files,
    to_screen,
    top_instance_map,
    upload_not_an_image,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DONE_TIMEOUT_MS = 240_000


@pytest.fixture
def photo(parity_dir):
    return parity_dir / "inputs" / "astronaut.png"


OVERLAY_DIGEST = (
    "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let h = 0;"
    " for (let i = 0; i < d.length; i += 3) h = (h * 31 + d[i]) >>> 0; return h; }"
)


def upload_card(page, photo):
    """Upload ``photo`` from the upload page; returns its card (once the server has named the job) and job id."""
    page.get_by_test_id("upload-input").set_input_files(str(photo))
    card = page.locator("[data-testid=job-card][data-job-id]").first
    card.wait_for()
    return card, card.get_attribute("data-job-id")


def set_slider(page, testid: str, value: float) -> None:
    """Move a viewer slider and wait until the viewer has re-rendered."""
    page.get_by_test_id(testid).fill(str(value))
    next_frames(page)


def save_readme_screenshot(page, result) -> None:
    """A small viewer screenshot for the README (palette PNG); docs/screenshot-viewer.png is a copy of it.

    Shown with a raised score threshold and the top instance hovered, as a person would look at it.
    """
    threshold = 0.8
    kept = [i for i in result["instances"] if i["score"] >= threshold]
    if not kept:
        return
    set_slider(page, "score-slider", threshold)
    page.evaluate("document.activeElement.blur()")
    owner = top_instance_map({**result, "instances": kept})
    if (owner == 0).any():
        page.mouse.move(*to_screen(page, result, *interior_point(owner, 0)))
    shot = Image.open(io.BytesIO(page.screenshot()))
    set_slider(page, "score-slider", 0)
    shot.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(
        artifact("screenshot-viewer.png"), optimize=True
    )


def test_upload_progress_view_share_and_privacy(browser, live_stack, photo):
    context = browser.new_context(viewport={"width": 1200, "height": 820})
    stranger = browser.new_context(viewport={"width": 1200, "height": 820})
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(live_stack.base_url + "/")
        page.wait_for_selector("body[data-ready=true]")

        # Upload through the real file input; the card follows the job over Socket.IO to done.
        page.get_by_test_id("upload-input").set_input_files(str(photo))
        card = page.get_by_test_id("job-card").first
        card.wait_for()
        seen = page.evaluate_handle(
            """card => { const seen = []; const read = () => { const s = card.querySelector('[data-testid=job-status]').textContent;
              if (seen[seen.length - 1] !== s) seen.push(s); };
              read(); new MutationObserver(read).observe(card, {subtree: true, childList: true, characterData: true}); return seen; }""",
            card.element_handle(),
        )
        page.wait_for_function(
            "() => document.querySelector('[data-testid=job-card] [data-testid=job-status]').textContent === 'done'",
            timeout=DONE_TIMEOUT_MS,
        )
        states = seen.json_value()
        assert states[-1] == "done"
        assert set(states) <= {"uploading", "queued", "running", "done"}, states
        assert card.get_by_test_id("job-progress").evaluate("p => p.value") == 1
        job_id = card.get_attribute("data-job-id")
        page.screenshot(path=artifact("upload-done.png"))

        # A reload brings the card back from the API.
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        restored = page.locator(f"[data-testid=job-card][data-job-id='{job_id}']")
        assert restored.get_by_test_id("job-status").inner_text() == "done"

        # The viewer: hover a pixel of the largest visible mask and read its label.
        restored.get_by_role("link", name="Open result").click()
        page.wait_for_selector(VIEWER_READY, timeout=60_000)
        result = page.evaluate(f"fetch('/api/jobs/{job_id}/result').then(r => r.json())")
        assert result["instances"], (
            "the small model found nothing in the photo even with the lowered threshold"
        )
        owner = top_instance_map(result)
        areas = np.bincount(owner[owner >= 0].ravel(), minlength=len(result["instances"]))
        index = int(np.argmax(areas))
        inst = result["instances"][index]
        x, y = interior_point(owner, index)
        page.mouse.move(*to_screen(page, result, x, y))
        assert label_text(page) == f"{inst['class_name']} {inst['score']:.3f}"
        page.screenshot(path=artifact("viewer-live-hover.png"))
        save_readme_screenshot(page, result)
        page.mouse.move(*to_screen(page, result, x, y))

        # Toggle its class off in the legend: nothing of that class answers there any more.
        legend_item = page.locator(f'[data-testid=legend-item][data-class-name="{inst["class_name"]}"]')
        legend_item.click()
        page.wait_for_function(
            "name => document.querySelector(`[data-testid=legend-item][data-class-name=\"${name}\"]`).getAttribute('aria-pressed') === 'false'",
            arg=inst["class_name"],
        )
        page.mouse.move(2, 2)
        page.mouse.move(*to_screen(page, result, x, y))
        text = label_text(page)
        assert text is None or not text.startswith(inst["class_name"] + " "), text
        page.screenshot(path=artifact("viewer-live-class-hidden.png"))
        legend_item.click()
        page.wait_for_function(
            "name => document.querySelector(`[data-testid=legend-item][data-class-name=\"${name}\"]`).getAttribute('aria-pressed') === 'true'",
            arg=inst["class_name"],
        )
        page.mouse.move(2, 2)
        owner_digest = page.get_by_test_id("overlay").evaluate(OVERLAY_DIGEST)

        # Share: the link opens in a fresh context without cookies and shows the same overlay.
        page.get_by_test_id("share-button").click()
        share_url = page.get_by_test_id("share-url")
        share_url.wait_for(state="visible")
        link = share_url.inner_text()
        assert link.startswith(live_stack.base_url + "/s/")
        shared = stranger.new_page()
        shared.goto(link)
        shared.wait_for_selector(VIEWER_READY, timeout=60_000)
        assert shared.get_by_test_id("overlay").evaluate(OVERLAY_DIGEST) == owner_digest
        shared.mouse.move(*to_screen(shared, result, x, y))
        assert label_text(shared) == f"{inst['class_name']} {inst['score']:.3f}"
        shared.screenshot(path=artifact("shared-live.png"))

        # Another context without the link cannot open the job itself.
        other = browser.new_context()
        try:
            peek = other.new_page()
            peek.goto(f"{live_stack.base_url}/jobs/{job_id}")
            peek.get_by_test_id("error").wait_for()
            assert peek.get_by_test_id("overlay").count() == 0
            assert peek.evaluate(f"fetch('/api/jobs/{job_id}').then(r => r.status)") == 404
            peek.screenshot(path=artifact("job-refused-live.png"))
        finally:
            other.close()
        assert errors == []
    finally:
        stranger.close()
        context.close()


def test_rejected_upload_shows_the_servers_words_and_cancel_works(browser, live_stack, photo, tmp_path):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(live_stack.base_url + "/")
        page.wait_for_selector("body[data-ready=true]")

        # Not an image: the card says what the server said, word for word.
        card = upload_not_an_image(page, tmp_path)
        server_says = page.evaluate(
            """async () => { const s = await (await fetch('/api/session')).json(); const f = new FormData();
               f.append('image', new Blob(['this is not a picture']), 'notes.png');
               const r = await fetch('/api/jobs', {method: 'POST', body: f, headers: {'X-CSRF-Token': s.csrf_token}});
               return (await r.json()).error.message; }"""
        )
        shown = card.locator(".card-error").inner_text()
        assert shown == server_says, (shown, server_says)
        status = card.get_by_test_id("job-status").inner_text()
        assert status == "failed", status

        # Cancel: the worker holds the job before its model stage, so it is caught mid-run; a running job
        # stops at its next stage boundary, which it reaches once the hold is lifted.
        live_stack.hold("model")
        try:
            active, job_id = upload_card(page, photo)
            active.get_by_role("button", name="Cancel").click()
            page.wait_for_function(
                "id => fetch(`/api/jobs/${id}`).then(r => r.json()).then(j => j.cancel_requested || j.state === 'cancelled')",
                arg=job_id,
            )
        finally:
            live_stack.release("model")
        cancelled = page.locator(f"[data-testid=job-card][data-job-id='{job_id}'][data-state=cancelled]")
        cancelled.wait_for(timeout=60_000)
        assert cancelled.get_by_test_id("job-status").inner_text() == "cancelled"
        page.screenshot(path=artifact("upload-rejected-and-cancelled.png"))
    finally:
        context.close()


def test_a_lost_connection_loses_nothing(browser, live_stack, photo):
    """The web server goes away while a job runs and finishes meanwhile; when it is back, the card shows done."""
    from backend.cli.processes import stop_process

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(live_stack.base_url + "/")
        page.wait_for_selector("body[data-ready=true]")
        live_stack.hold("model")
        try:
            card, job_id = upload_card(page, photo)
            page.wait_for_function("() => !document.body.classList.contains('offline')")
            stop_process(live_stack.web, signal.SIGTERM, grace_s=10)
            live_stack.web = None
            banner = page.get_by_test_id("connection-lost")
            banner.wait_for(timeout=30_000)
            assert "Live updates are interrupted" in banner.inner_text()
        finally:
            live_stack.release("model")
        # The job finishes while the browser has no connection: its events are lost to this page.
        deadline = time.monotonic() + 180
        while live_stack.db_jobs(job_id)[job_id]["state"] != "done":
            assert time.monotonic() < deadline, "the job did not finish while the web was down"
            time.sleep(0.3)
        assert card.get_attribute("data-state") != "done"
        live_stack.start_web()
        page.locator(f"[data-testid=job-card][data-job-id='{job_id}'][data-state=done]").wait_for(
            timeout=60_000
        )
        assert card.get_by_test_id("job-status").inner_text() == "done"
        # Done may come from a poll before the socket is back; the banner goes once it reconnects.
        page.get_by_test_id("connection-lost").wait_for(state="hidden", timeout=30_000)
    finally:
        if live_stack.web is None:
            live_stack.start_web()
        context.close()


def test_a_reloaded_page_follows_its_jobs_with_one_subscribe_to_the_end(browser, live_stack, tmp_path):
    """After a reload the page brings back its unfinished jobs and follows them all with one Socket.IO message
    (``{"job_ids": [...]}``); the events that message subscribed to carry every card to done."""
    paths = photo_files(tmp_path, 3)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(live_stack.base_url + "/")
        page.wait_for_selector("body[data-ready=true]")
        live_stack.hold("decode")
        try:
            page.get_by_test_id("upload-input").set_input_files(paths)
            page.wait_for_function(
                "() => document.querySelectorAll('[data-testid=job-card][data-job-id]').length === 3"
            )
            ids = page.eval_on_selector_all(
                "[data-testid=job-card]", "cards => cards.map(c => c.dataset.jobId)"
            )
            sent = []
            page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(str(frame))))
            page.reload()
            page.wait_for_selector("body[data-ready=true]")
            page.wait_for_function(
                "() => document.querySelectorAll('[data-testid=job-card][data-job-id]').length === 3"
            )
            subscribes = [f for f in sent if '"subscribe"' in f]
            deadline = time.monotonic() + 30
            while not subscribes and time.monotonic() < deadline:
                page.wait_for_timeout(100)  # Playwright delivers frame events between its calls
                subscribes = [f for f in sent if '"subscribe"' in f]
            assert len(subscribes) == 1 and '"job_ids"' in subscribes[0], subscribes
            assert all(job_id in subscribes[0] for job_id in ids), subscribes
        finally:
            live_stack.release("decode")
        for job_id in ids:
            page.locator(f"[data-testid=job-card][data-job-id='{job_id}'][data-state=done]").wait_for(
                timeout=DONE_TIMEOUT_MS
            )
        assert page.evaluate("() => !document.body.classList.contains('offline')")  # events, not polling
    finally:
        context.close()


def test_result_page_follows_a_running_job_to_its_viewer(browser, live_stack, photo):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(live_stack.base_url + "/")
        page.wait_for_selector("body[data-ready=true]")
        live_stack.hold("masks")
        try:
            card, job_id = upload_card(page, photo)
            page.goto(f"{live_stack.base_url}/jobs/{job_id}")
            status = page.get_by_test_id("job-status")
            status.wait_for()
            assert status.inner_text() in ("queued", "running")
        finally:
            live_stack.release("masks")
        page.wait_for_selector(VIEWER_READY, timeout=DONE_TIMEOUT_MS)
        assert page.get_by_test_id("share-button").is_enabled()
    finally:
        context.close()


RECORD_PROGRESS = """card => { const seen = [];
  const read = () => { const v = card.querySelector('[data-testid=job-progress]').value;
    const t = card.querySelector('.stage').textContent; const last = seen[seen.length - 1];
    if (!last || last[0] !== v || last[1] !== t) seen.push([v, t]); };
  read(); new MutationObserver(read).observe(card, {subtree: true, childList: true, characterData: true, attributes: true});
  return seen; }"""


def test_progress_is_stage_weighted_moves_through_the_model_stage_and_never_goes_back(
    browser, live_stack, photo
):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(live_stack.base_url + "/")
        page.wait_for_selector("body[data-ready=true]")
        # One finished job gives the worker measured stage durations to expect.
        page.get_by_test_id("upload-input").set_input_files(str(photo))
        page.locator("[data-testid=job-card][data-state=done]").wait_for(timeout=DONE_TIMEOUT_MS)

        # The next job enters its model stage and waits there: the worker says nothing more, so whatever moves
        # the bar now is the page's clock against the measured estimate (however fast this machine's model is).
        live_stack.hold("model", inside=True)
        try:
            page.get_by_test_id("upload-input").set_input_files(str(photo))
            card = page.locator("[data-testid=job-card]").first
            card.wait_for()
            seen = page.evaluate_handle(RECORD_PROGRESS, card.element_handle())
            page.wait_for_function(
                "seen => new Set(seen.filter(([v, t]) => t.startsWith('Finding objects')).map(([v]) => v)).size >= 2",
                arg=seen,
                timeout=DONE_TIMEOUT_MS,
            )
            job = page.evaluate(
                "id => fetch(`/api/jobs/${id}`).then(r => r.json())", card.get_attribute("data-job-id")
            )
            assert (
                job["stage"] == "model" and job["progress"] == 0
            )  # the worker reported nothing in the stage
            assert job["stage_estimates"]["model"] > 0 and job["stage_elapsed_s"] is not None
            text = card.locator(".stage").inner_text()
            assert (
                text.startswith("Finding objects… ")
                and "%" in text
                and "left" in text
                or "almost done" in text
            )
            page.screenshot(path=artifact("upload-progress.png"))
        finally:
            live_stack.release("model", inside=True)
        page.wait_for_function(
            "card => card.dataset.state === 'done'", arg=card.element_handle(), timeout=DONE_TIMEOUT_MS
        )
        values = [v for v, _ in seen.json_value()]
        assert values == sorted(values), values  # never backwards, not even at a stage change
        assert values[-1] == 1
        in_model = {v for v, t in seen.json_value() if t.startswith("Finding objects")}
        assert len(in_model) >= 3 and min(in_model) > 0, in_model
    finally:
        context.close()


def wait_live(page) -> None:
    """Until the page is ready and its live feed connected (no connection banner)."""
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_function("() => !document.body.classList.contains('offline')")


def test_a_page_signed_out_by_a_cookie_rotation_says_so(browser, live_stack):
    """The identity cookie is rotated (as after a suspected copy): the page's socket, opened with the old cookie,
    is signed out by the server, and the banner says why instead of promising a reconnect that won't come."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(live_stack.base_url + "/")
        wait_live(page)
        status = page.evaluate(
            """async () => {
                const session = await (await fetch("/api/session")).json();
                const answer = await fetch("/api/session/rotate",
                    { method: "POST", headers: { "X-CSRF-Token": session.csrf_token } });
                return answer.status;
            }"""
        )
        assert status == 200
        banner = page.get_by_test_id("connection-lost")
        banner.wait_for(timeout=30_000)
        assert "identity cookie was replaced" in banner.inner_text()
        page.screenshot(path=str(artifact("signed-out.png")))
        page.reload()  # the new cookie signs the page in again
        wait_live(page)
        assert page.get_by_test_id("connection-lost").is_hidden()
    finally:
        context.close()


def test_a_page_that_cannot_open_a_socket_follows_its_jobs_over_http(browser, live_stack, photo):
    """A proxy that passes plain HTTP but no Socket.IO (neither WebSocket nor long-polling): the page says live
    updates are interrupted and still takes its job from queued to done by polling the API."""
    import re

    context = browser.new_context()
    try:
        page = context.new_page()
        refused = []
        page.route_web_socket(
            re.compile(r".*/socket\.io/.*"), lambda ws: (refused.append(ws.url), ws.close())
        )
        page.route(re.compile(r".*/socket\.io/.*"), lambda route: route.abort())
        page.goto(live_stack.base_url + "/")
        page.wait_for_selector("body[data-ready=true]")
        banner = page.get_by_test_id("connection-lost")
        banner.wait_for(timeout=30_000)
        assert "Live updates are interrupted" in banner.inner_text()
        live_stack.hold("model")
        try:
            card, job_id = upload_card(page, photo)
            # The held job is seen running through the API, not through a socket.
            page.locator(f"[data-testid=job-card][data-job-id='{job_id}'][data-state=running]").wait_for(
                timeout=60_000
            )
        finally:
            live_stack.release("model")
        page.locator(f"[data-testid=job-card][data-job-id='{job_id}'][data-state=done]").wait_for(
            timeout=120_000
        )
        assert refused, "the page never tried a WebSocket"
        assert banner.is_visible(), "no socket was ever connected"
        page.screenshot(path=str(artifact("polling-fallback.png")))
    finally:
        context.close()
