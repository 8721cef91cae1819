"""Gallery in Chromium: newest first, more on scroll (cursor pages), class filter, delete."""

from __future__ import annotations

import pytest

from .support import artifact, insert_done_job, synthetic_result

pytestmark = pytest.mark.browser

PAGE = 24  # the gallery's page size (frontend/src/gallery_page.js)


def test_gallery_pages_filters_and_deletes(context, web_app):
    page = context.new_page()
    page.goto(web_app.base_url + "/gallery")
    user_id = page.evaluate("fetch('/api/session').then(r => r.json())")["user_id"]
    job_ids = []
    classes_of = {}
    for n in range(PAGE + 6):
        result, image = synthetic_result(96, 72, 1 + n % 3, seed=100 + n)
        job_id = insert_done_job(web_app.settings, user_id, image, result, f"photo-{n:02d}.png")
        job_ids.append(job_id)
        classes_of[job_id] = {i["class_name"] for i in result["instances"]}
    newest_first = list(reversed(job_ids))

    page.goto(web_app.base_url + "/gallery")
    items = page.get_by_test_id("gallery-item")
    items.first.wait_for()
    # The first page holds PAGE items unless it already had to load more to fill the window.
    assert items.count() >= PAGE
    page.get_by_test_id("gallery-item").last.scroll_into_view_if_needed()
    page.mouse.wheel(0, 20_000)
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=gallery-item]').length === n", arg=len(job_ids)
    )
    shown = [items.nth(i).get_attribute("data-job-id") for i in range(items.count())]
    assert shown == newest_first
    first_classes = items.first.locator(".chip").all_inner_texts()
    assert set(first_classes) == classes_of[newest_first[0]]
    page.screenshot(path=artifact("gallery.png"), full_page=True)

    # Filter by a class: exactly the results that contain it, still newest first.
    wanted = sorted(classes_of[newest_first[0]])[0]
    page.get_by_test_id("class-filter").fill(wanted)
    expected = [j for j in newest_first if wanted in classes_of[j]]
    page.wait_for_function(
        "ids => [...document.querySelectorAll('[data-testid=gallery-item]')].map(e => e.dataset.jobId).join() === ids.join()",
        arg=expected,
        timeout=15_000,
    )

    # Delete: two clicks (the first arms the button); the item goes and so does the job.
    victim = expected[0]
    item = page.locator(f"[data-testid=gallery-item][data-job-id='{victim}']")
    item.get_by_test_id("delete-button").click()
    assert item.count() == 1
    item.get_by_test_id("delete-button").click()
    item.wait_for(state="detached")
    assert page.evaluate(f"fetch('/api/jobs/{victim}').then(r => r.status)") == 404
