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


def test_gallery_filter_suggests_matches_by_prefix_and_lives_in_the_url(context, web_app):
    page = context.new_page()
    page.goto(web_app.base_url + "/gallery")
    user_id = page.evaluate("fetch('/api/session').then(r => r.json())")["user_id"]
    classes_of = {}
    for n in range(6):
        result, image = synthetic_result(96, 72, 1 + n % 3, seed=300 + n)
        job_id = insert_done_job(web_app.settings, user_id, image, result, f"pic-{n}.png")
        classes_of[job_id] = {i["class_name"] for i in result["instances"]}
    empty, empty_image = synthetic_result(96, 72, 0, seed=1)
    nothing = insert_done_job(web_app.settings, user_id, empty_image, empty, "nothing.png")
    counts = {}
    for names in classes_of.values():
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    commonest = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    page.goto(web_app.base_url + "/gallery")
    page.locator(f"[data-testid=gallery-item][data-job-id='{nothing}']").wait_for()
    # A result without objects says so.
    empty_item = page.locator(f"[data-testid=gallery-item][data-job-id='{nothing}']")
    assert empty_item.get_by_test_id("no-objects").inner_text() == "no objects found"
    # The filter suggests the classes present, and its placeholder names the commonest.
    page.wait_for_function(
        "n => document.querySelectorAll('#class-options option').length === n", arg=len(counts)
    )
    options = page.eval_on_selector_all("#class-options option", "os => os.map(o => o.value)")
    assert options == [name for name, _ in commonest]
    field = page.get_by_test_id("class-filter")
    assert field.get_attribute("placeholder") == f"e.g. {commonest[0][0]}"

    # A prefix, typed in another case, matches every class starting with it.
    wanted = commonest[0][0]
    prefix = wanted[:3].upper()
    expected = [j for j in reversed(list(classes_of)) if any(c.startswith(wanted[:3]) for c in classes_of[j])]
    field.fill(prefix)
    shown = "ids => [...document.querySelectorAll('[data-testid=gallery-item]')].map(e => e.dataset.jobId).join() === ids.join()"
    page.wait_for_function(shown, arg=expected)
    page.wait_for_function("p => new URL(location.href).searchParams.get('class') === p", arg=prefix)

    # Open a result and come Back: the filter and its results are still there.
    page.get_by_test_id("gallery-item").first.locator("a.thumb-link").click()
    page.wait_for_url("**/jobs/*")
    page.go_back()
    page.wait_for_function(shown, arg=expected)
    assert page.get_by_test_id("class-filter").input_value() == prefix

    # Choosing a class from a result's chips is a step Back can undo.
    chip_class = sorted(classes_of[expected[0]])[-1]
    page.locator(
        f"[data-testid=gallery-item][data-job-id='{expected[0]}'] .chip", has_text=chip_class
    ).first.click()
    page.wait_for_function("c => new URL(location.href).searchParams.get('class') === c", arg=chip_class)
    page.go_back()
    page.wait_for_function(
        "p => document.querySelector('[data-testid=class-filter]').value === p", arg=prefix
    )
    page.wait_for_function(shown, arg=expected)
