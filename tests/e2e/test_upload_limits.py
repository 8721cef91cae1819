"""The upload page against a low upload rate limit, in Chromium: many photos wait out the limit by themselves and
all arrive. Its own module, with its own web app: Flask-SocketIO keeps one Socket.IO server per process, so a
second app started within a module would take over the sockets of the module's other app."""

from __future__ import annotations

import pytest

from .support import accepted_photos, photo_files, serve_web_app, upload_answers

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def limited_app(tmp_path_factory):
    """The web app with an upload limit of 3 requests per 2 seconds, so thirty photos (six requests) run into it."""
    from backend.settings import Settings

    data_dir = tmp_path_factory.mktemp("e2e-limited")
    settings = Settings(
        data_dir=data_dir, secret_key="e2e", weights=data_dir / "w.h5", upload_rate_limit="3 per 2 second"
    )
    with serve_web_app(settings) as running:
        yield running


def test_many_photos_wait_out_the_rate_limit_and_all_arrive(context, limited_app, tmp_path):
    page = context.new_page()
    page.goto(limited_app.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    notices = page.evaluate_handle(
        """() => { const seen = []; new MutationObserver(() => { const t = document.getElementById('notices').innerText;
           if (t && seen[seen.length - 1] !== t) seen.push(t); }).observe(document.getElementById('notices'),
           {subtree: true, childList: true, characterData: true}); return seen; }"""
    )
    responses = upload_answers(page)
    count = 30  # six requests of five photos against a limit of three requests per two seconds
    page.get_by_test_id("upload-input").set_input_files(photo_files(tmp_path, count))
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=job-card][data-state=queued]').length === n",
        arg=count,
        timeout=30_000,
    )
    assert page.locator("[data-testid=job-card][data-state=failed]").count() == 0
    seen = notices.json_value()
    assert any("the limit is 3 per 2 second" in text and " s." in text for text in seen), seen
    statuses = [r.status for r in responses]
    accepted = accepted_photos(responses)
    # every photo arrived, a selection going several photos a request
    assert sum(accepted) == count and max(accepted) == 5, accepted
    # After a refusal nothing more was sent until the wait was over: at most the requests already in
    # flight (two more) were refused with it.
    assert 1 <= statuses.count(429), statuses
    runs, run = [], 0
    for status in statuses:
        run = run + 1 if status == 429 else 0
        runs.append(run)
    assert max(runs) <= 3, statuses
    page.wait_for_function("() => document.getElementById('notices').innerText === ''")
