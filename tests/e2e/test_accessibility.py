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
    "unknown page": ("/no/such/page", "[data-testid=error-page]"),
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


def test_unknown_pages_and_failures_answer_html_in_the_apps_style_and_the_api_json(browser, web_app):
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    response = page.goto(web_app.base_url + "/no/such/page")
    assert response.status == 404 and response.headers["content-type"].startswith("text/html")
    assert page.locator("h1").inner_text() == "Page not found"
    assert page.title() == "Page not found · maskweb"
    page.get_by_role("link", name="Upload a photo").click()
    page.wait_for_selector("body[data-ready=true]")
    assert (
        page.evaluate("fetch('/api/no/such').then(r => r.headers.get('content-type'))") == "application/json"
    )

    # A failure inside a page route: the users table goes missing for a moment.
    engine = web_app.app.extensions["maskweb"].engine
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE users RENAME TO users_gone")
    try:
        response = page.goto(web_app.base_url + "/gallery")
        assert response.status == 500
        assert page.locator("h1").inner_text() == "Something went wrong on our side"
        assert serious_violations(page) == []
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE users_gone RENAME TO users")
        context.close()
