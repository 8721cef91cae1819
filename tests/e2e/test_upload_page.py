"""Upload page in Chromium, against the web app alone (nothing is processed): many files from the picker, a
drop, a paste; each file gets its card with a preview, the state word and its queue position."""

from __future__ import annotations

import pytest

from .support import artifact

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
