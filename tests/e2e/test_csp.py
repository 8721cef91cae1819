"""Every page works under the Content-Security-Policy in Chromium, and none reports a violation (issue 10,
point 6). The listener is added before any page script runs (an init script is not subject to the policy)."""

from __future__ import annotations

import pytest

from .support import VIEWER_READY, insert_done_job, synthetic_result

pytestmark = pytest.mark.browser

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e =>
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));
"""


def open_page(context, url: str, ready: str):
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if "Content Security Policy" in m.text else None,
    )
    page.add_init_script(RECORD_VIOLATIONS)
    response = page.goto(url)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(ready, timeout=30_000)
    return page, problems


def assert_no_violation(page, problems: list[str]) -> None:
    page.wait_for_timeout(200)  # violation events are dispatched asynchronously
    assert page.evaluate("window.__csp") == [] and problems == []


def test_every_page_works_under_the_policy_with_no_violation(context, browser, web_app):
    result, image = synthetic_result(320, 240, 6, seed=11)
    base = web_app.base_url

    upload, problems = open_page(context, base + "/", "body[data-ready=true]")
    user_id = upload.evaluate("fetch('/api/session').then(r => r.json())")["user_id"]
    # A file from the picker: its preview is a blob: URL, its upload a fetch to this origin.
    # A PNG keeps its blob: preview; a TIFF (which the browser cannot show) gets the server's thumbnail.
    upload.get_by_test_id("upload-input").set_input_files(
        [
            {"name": "a.png", "mimeType": "image/png", "buffer": _png()},
            {"name": "b.tiff", "mimeType": "image/tiff", "buffer": _png("TIFF")},
        ]
    )
    for name, shown in (
        ("a.png", "img.src.startsWith('blob:')"),
        ("b.tiff", "img.src.endsWith('/thumbnail')"),
    ):
        card = upload.locator("[data-testid=job-card][data-state=queued]", has_text=name)
        card.wait_for()
        upload.wait_for_function(
            f"img => img.complete && img.naturalWidth > 0 && {shown}",
            arg=card.locator("img.preview").element_handle(),
        )
    assert_no_violation(upload, problems)

    job_id = insert_done_job(web_app.settings, user_id, image, result, "csp.png")
    gallery, problems = open_page(
        context, base + "/gallery", f"[data-testid=gallery-item][data-job-id='{job_id}']"
    )
    assert_no_violation(gallery, problems)

    viewer, problems = open_page(context, f"{base}/jobs/{job_id}", VIEWER_READY)
    viewer.get_by_test_id("share-button").click()
    viewer.get_by_test_id("share-url").wait_for(state="visible")
    link = viewer.get_by_test_id("share-url").inner_text()
    assert_no_violation(viewer, problems)

    stranger = browser.new_context()
    try:
        shared, problems = open_page(stranger, link, VIEWER_READY)
        assert_no_violation(shared, problems)
        missing, problems = open_page(stranger, base + "/s/not-a-token", "[data-testid=error]")
        assert_no_violation(missing, problems)
    finally:
        stranger.close()


def test_no_page_can_be_framed_even_by_its_own_site(context, web_app):
    page = context.new_page()
    page.goto(web_app.base_url + "/healthz")  # same origin: a framed page would be readable from here
    page.evaluate(
        """url => new Promise(done => { const f = document.createElement('iframe'); f.onload = done;
        f.src = url; document.body.append(f); })""",
        web_app.base_url + "/gallery",
    )
    framed = page.evaluate(
        "() => { const d = document.querySelector('iframe').contentDocument; return d && d.body ? d.body.innerHTML : null; }"
    )
    assert not framed or "maskweb" not in framed, "the gallery rendered inside a frame"


def _png(fmt: str = "PNG") -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(buf, format=fmt)
    return buf.getvalue()
