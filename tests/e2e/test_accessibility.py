"""axe-core (frontend/node_modules/axe-core, pinned in package.json; injected by the test, never shipped) on
every page in real Chromium: no serious or critical violations, on a laptop and on a phone."""

from __future__ import annotations

import pytest

from .support import (
    ROOT,
    VIEWER_READY,
    insert_done_job,
    insert_failed_job,
    synthetic_result,
)

pytestmark = pytest.mark.browser

AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => {
  const report = await axe.run(document, {resultTypes: ['violations']});
  return report.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


def serious_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE)


@pytest.fixture(scope="module")
def pages(browser, web_app):
    """One visitor with a finished, a crowded and a failed result, a shared link, and a card on the upload page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(web_app.base_url + "/")
    user_id = page.evaluate("fetch('/api/session').then(r => r.json())")["user_id"]
    result, image = synthetic_result(640, 480, 12, seed=11)
    done = insert_done_job(web_app.settings, user_id, image, result, "street.png")
    empty_result, empty_image = synthetic_result(200, 150, 0, seed=2)
    insert_done_job(web_app.settings, user_id, empty_image, empty_result, "empty.png")
    failed = insert_failed_job(web_app.settings, user_id, image, "broken.png")
    token = page.evaluate(
        """async (id) => { const s = await (await fetch('/api/session')).json();
           const r = await fetch(`/api/jobs/${id}/share`, {method: 'POST', headers: {'X-CSRF-Token': s.csrf_token}});
           return (await r.json()).token; }""",
        done,
    )
    page.evaluate("ids => sessionStorage.setItem('maskweb.upload.jobs', JSON.stringify(ids))", [done, failed])
    state = context.storage_state()
    context.close()
    return {"state": state, "done": done, "failed": failed, "token": token}


PAGES = {
    "upload": ("/", "body[data-ready=true] [data-testid=job-card]"),
    "gallery": ("/gallery", "[data-testid=gallery-item]"),
    "viewer": ("/jobs/{done}", VIEWER_READY),
    "failed job": ("/jobs/{failed}", "[data-testid=retry-button]:not([hidden])"),
    "shared": ("/s/{token}", VIEWER_READY),
    "revoked link": ("/s/no-such-token", "[data-testid=error]"),
}


@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)], ids=["laptop", "phone"])
@pytest.mark.parametrize("name", list(PAGES))
def test_no_serious_accessibility_violations(browser, web_app, pages, name, width, height):
    path, ready = PAGES[name]
    # bypass_csp: the page's policy (rightly) refuses the inline script that carries axe into it.
    context = browser.new_context(
        viewport={"width": width, "height": height}, storage_state=pages["state"], bypass_csp=True
    )
    try:
        page = context.new_page()
        if name == "upload":  # the cards of this tab's jobs come back from sessionStorage, set per page
            page.goto(web_app.base_url + "/gallery")
            page.evaluate(
                "ids => sessionStorage.setItem('maskweb.upload.jobs', JSON.stringify(ids))",
                [pages["done"], pages["failed"]],
            )
        page.goto(web_app.base_url + path.format(**pages))
        page.wait_for_selector(ready, timeout=30_000)
        assert serious_violations(page) == []
    finally:
        context.close()
