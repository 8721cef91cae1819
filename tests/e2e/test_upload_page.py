"""Upload page in Chromium, against the web app alone (nothing is processed): many files from the picker, a
drop, a paste; each file gets its card with a preview, the state word and its queue position."""

from __future__ import annotations

import pytest

from .support import (
    accepted_photos,
    artifact,
    insert_done_job,
    insert_failed_job,
    photo_files,
    synthetic_result,
    upload_answers,
    upload_not_an_image,
)

pytestmark = pytest.mark.browser

# Builds a PNG File in the page (a canvas) so drop and paste carry real image bytes.
MAKE_FILE = """async ([name, color]) => {
  const c = document.createElement('canvas'); c.width = 40; c.height = 30;
  const g = c.getContext('2d'); g.fillStyle = color; g.fillRect(0, 0, 40, 30);
  const blob = await new Promise(r => c.toBlob(r, 'image/png'));
  return new File([blob], name, {type: 'image/png'});
}"""


def test_picker_drop_and_paste_each_make_a_card_in_the_queue(context, web_app, parity_dir):
    page = context.new_page()
    page.goto(web_app.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    inputs = sorted((parity_dir / "inputs").glob("*.png"))
    page.get_by_test_id("upload-input").set_input_files([str(p) for p in inputs])

    dropped = page.evaluate_handle(
        f"""async () => {{ const f = await ({MAKE_FILE})(['dropped.png', '#c33']); const dt = new DataTransfer();
        dt.items.add(f); document.dispatchEvent(new DragEvent('drop', {{dataTransfer: dt, bubbles: true, cancelable: true}})); }}"""
    )
    dropped.dispose()
    pasted = page.evaluate_handle(
        f"""async () => {{ const f = await ({MAKE_FILE})(['pasted.png', '#3c3']); const dt = new DataTransfer();
        dt.items.add(f); document.dispatchEvent(new ClipboardEvent('paste', {{clipboardData: dt, bubbles: true, cancelable: true}})); }}"""
    )
    pasted.dispose()

    expected = len(inputs) + 2
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=job-card][data-state=queued]').length === n",
        arg=expected,
    )
    cards = page.get_by_test_id("job-card")
    titles = sorted(cards.nth(i).locator(".card-title").inner_text() for i in range(cards.count()))
    assert titles == sorted([p.name for p in inputs] + ["dropped.png", "pasted.png"])
    # each card shows its queue position once the dispatcher's round publishes it (the upload answers first)
    page.wait_for_function(
        """n => [...document.querySelectorAll('[data-testid=job-card] .stage')]
                 .filter(s => /^Number \\d+ in the queue$/.test(s.textContent.trim())).length === n""",
        arg=expected,
    )
    positions = []
    for i in range(expected):
        card = cards.nth(i)
        assert card.get_by_test_id("job-status").inner_text() == "queued"
        assert card.get_by_test_id("job-progress").evaluate("p => p.value") == 0
        assert card.locator("img.preview").evaluate("img => img.complete && img.naturalWidth > 0")
        stage = card.locator(".stage").inner_text()
        assert stage.startswith("Number ") and stage.endswith(" in the queue"), stage
        positions.append(int(stage.split()[1]))
    assert sorted(positions) == list(range(1, expected + 1))
    page.screenshot(path=artifact("upload-queued.png"))

    # A reload restores every card from the API.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("[data-testid=job-card][data-state=queued]").count() == expected

    # Cancel a waiting job: it is cancelled at once.
    first = page.locator("[data-testid=job-card][data-state=queued]").first
    job_id = first.get_attribute("data-job-id")
    first.get_by_role("button", name="Cancel").click()
    page.locator(f"[data-testid=job-card][data-job-id='{job_id}'][data-state=cancelled]").wait_for()


def test_a_finished_cards_lines_wrap_without_overlapping(browser, web_app):
    """A long "N objects found: a, b, …" wraps onto lines that lie one under the other (no leaked rule)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(web_app.base_url + "/")
        user_id = page.evaluate("fetch('/api/session').then(r => r.json())")["user_id"]
        result, image = synthetic_result(200, 150, 17, seed=3)
        job_id = insert_done_job(web_app.settings, user_id, image, result, "crowded.png")
        # The card of a job this tab uploaded comes back after a reload.
        page.evaluate("id => sessionStorage.setItem('maskweb.upload.jobs', JSON.stringify([id]))", job_id)
        page.reload()
        card = page.locator(f"[data-testid=job-card][data-job-id='{job_id}']")
        card.wait_for()
        lines = card.locator(".stage").evaluate(
            "s => { const r = document.createRange(); r.selectNodeContents(s);"
            " return [...r.getClientRects()].map(b => [b.top, b.bottom]); }"
        )
        assert len(lines) >= 2, lines  # it does wrap at this width
        for (top_a, bottom_a), (top_b, _bottom_b) in zip(lines, lines[1:], strict=False):
            assert bottom_a - top_a > 8 and top_b >= bottom_a - 0.5, lines
        page.screenshot(path=artifact("upload-card-wrapped.png"))
    finally:
        context.close()


def test_choose_photos_by_keyboard_shows_focus_and_opens_the_picker(context, web_app, tmp_path):
    page = context.new_page()
    # Playwright turns file-chooser interception on with a message it does not wait for. A key press (unlike a
    # click, which first checks the element) can reach Chromium before it; the picker then opens un-intercepted
    # and headless Chromium drops it. Listening from the start puts the page load between the two.
    page.on("filechooser", lambda _chooser: None)
    page.goto(web_app.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    label = page.locator("label[for=upload-input]")
    assert label.evaluate("l => getComputedStyle(l).outlineStyle") == "none"
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "upload-input":
            break
    assert page.evaluate("document.activeElement.id") == "upload-input"
    assert label.evaluate("l => getComputedStyle(l).outlineStyle") == "solid"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(photo_files(tmp_path, 1))
    page.locator("[data-testid=job-card][data-state=queued]").wait_for()


def _queued_preview(context, web_app, tmp_path, fmt: str):
    """Upload one ``fmt`` photo from the picker; (page, the queued card's preview, thumbnail URLs requested)."""
    page = context.new_page()
    thumbnails = []
    page.on("request", lambda r: thumbnails.append(r.url) if r.url.endswith("/thumbnail") else None)
    page.goto(web_app.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_test_id("upload-input").set_input_files(photo_files(tmp_path, 1, fmt, (120, 90)))
    card = page.locator("[data-testid=job-card][data-state=queued]")
    card.wait_for()
    return page, card.locator("img.preview"), thumbnails


def test_a_tiff_card_gets_the_servers_thumbnail(context, web_app, tmp_path):
    page, preview, _ = _queued_preview(context, web_app, tmp_path, "TIFF")
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0 && img.src.endsWith('/thumbnail')",
        arg=preview.element_handle(),
    )
    assert preview.is_visible()


def test_a_card_the_browser_can_show_keeps_its_own_preview_and_fetches_no_thumbnail(
    context, web_app, tmp_path
):
    page, preview, thumbnails = _queued_preview(context, web_app, tmp_path, "PNG")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.element_handle())
    assert preview.get_attribute("src").startswith("blob:") and thumbnails == []


def test_a_refused_upload_can_be_retried(context, web_app, tmp_path):
    page = context.new_page()
    page.goto(web_app.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    card = upload_not_an_image(page, tmp_path)
    message = card.locator(".card-error").inner_text()
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as sent:
        card.get_by_test_id("retry-button").click()
    assert sent.value.status == 415
    page.locator("[data-testid=job-card][data-state=failed]").wait_for()
    assert card.locator(".card-error").inner_text() == message


def test_a_failed_job_is_retried_from_its_card_with_the_kept_original(context, web_app):
    page = context.new_page()
    page.goto(web_app.base_url + "/")
    user_id = page.evaluate("fetch('/api/session').then(r => r.json())")["user_id"]
    result, image = synthetic_result(120, 90, 2, seed=4)
    failed_id = insert_failed_job(web_app.settings, user_id, image, "broken.png")
    page.evaluate("id => sessionStorage.setItem('maskweb.upload.jobs', JSON.stringify([id]))", failed_id)
    page.reload()
    card = page.locator(f"[data-testid=job-card][data-job-id='{failed_id}']")
    card.wait_for()
    assert card.get_attribute("data-state") == "failed"
    assert card.locator(".card-error").inner_text() == "The model ran out of memory on this photo."
    card.get_by_test_id("retry-button").click()
    retried = page.locator("[data-testid=job-card][data-state=queued]")
    retried.wait_for()
    new_id = retried.get_attribute("data-job-id")
    assert new_id != failed_id
    assert retried.locator(".card-title").inner_text() == "broken.png"
    sent = page.evaluate(f"fetch('/api/jobs/{new_id}').then(r => r.json())")
    assert (sent["width"], sent["height"]) == (120, 90)


def test_each_refused_files_card_names_that_file_and_the_rest_of_its_selection_is_accepted(
    context, web_app, tmp_path
):
    """The page sends a selection in one request, which the server takes whole or not at all: each refused
    file's card says what was wrong with that file in words that name it alone, and the good photos picked
    with them are accepted together in one request."""
    page = context.new_page()
    page.goto(web_app.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    responses = upload_answers(page)
    good = photo_files(tmp_path, 3)
    paths = []
    for name in ("first.png", "second.png"):
        path = tmp_path / name
        path.write_text(f"{name} is text, not a picture")
        paths.append(str(path))
    paths = [good[0], paths[0], good[1], paths[1], good[2]]
    page.get_by_test_id("upload-input").set_input_files(paths)
    page.wait_for_function(
        """() => document.querySelectorAll('[data-testid=job-card][data-state=failed]').length === 2
              && document.querySelectorAll('[data-testid=job-card][data-state=queued]').length === 3"""
    )
    for name in ("first.png", "second.png"):
        card = page.locator("[data-testid=job-card]", has=page.locator(".card-title", has_text=name))
        error = card.locator(".card-error").inner_text()
        assert error.startswith(f"'{name}': ") and "File " not in error, error
    assert accepted_photos(responses) == [3]
