"""Dense results stay readable: captions inside the photo and never on top of one another, on a laptop and on
a 390x844 phone; an object whose caption did not fit is still named on hover and in the instance list."""

from __future__ import annotations

import pytest

from .support import (
    artifact,
    interior_point,
    label_text,
    open_result,
    synthetic_result,
    to_screen,
    top_instance_map,
)

pytestmark = pytest.mark.browser

VIEWPORTS = {"laptop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def dense():
    """30 objects on a 800x600 photo (about what a street scene gives), and who is on top at every pixel."""
    result, image = synthetic_result(800, 600, 30, seed=28)
    return result, image, top_instance_map(result)


def captions(page) -> list[dict]:
    return page.eval_on_selector_all(
        "[data-testid=captions] .caption",
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {index: Number(e.dataset.index), text: e.textContent, x: r.x, y: r.y, w: r.width, h: r.height,"
        " clipped: e.scrollWidth > e.clientWidth}; })",
    )


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_captions_stay_inside_the_photo_without_overlapping(browser, web_app, dense, viewport):
    result, image, owner = dense
    phone = viewport == "phone"
    context = browser.new_context(
        viewport=VIEWPORTS[viewport], device_scale_factor=2 if phone else 1, has_touch=phone
    )
    try:
        page = context.new_page()
        open_result(page, web_app, result, image, "crowd.png")
        photo = page.get_by_test_id("overlay").bounding_box()
        shown = captions(page)
        assert len(shown) >= (6 if phone else 15), len(shown)
        instances = result["instances"]
        for c in shown:
            inst = instances[c["index"]]
            assert c["text"] == f"{inst['class_name']} {inst['score']:.3f}"
            assert not c["clipped"], c
            assert photo["x"] - 0.5 <= c["x"] and c["x"] + c["w"] <= photo["x"] + photo["width"] + 0.5, c
            assert photo["y"] - 0.5 <= c["y"] and c["y"] + c["h"] <= photo["y"] + photo["height"] + 0.5, c
        for i, a in enumerate(shown):
            for b in shown[i + 1 :]:
                apart = (
                    a["x"] + a["w"] <= b["x"] + 0.5
                    or b["x"] + b["w"] <= a["x"] + 0.5
                    or a["y"] + a["h"] <= b["y"] + 0.5
                    or b["y"] + b["h"] <= a["y"] + 0.5
                )
                assert apart, (a, b)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=artifact(f"viewer-dense-{viewport}.png"), full_page=phone)

        # An object without a caption is still named on hover and listed.
        placed = {c["index"] for c in shown}
        missing = [i for i in range(len(instances)) if i not in placed and (owner == i).any()]
        if missing:
            index = missing[0]
            page.mouse.move(*to_screen(page, result, *interior_point(owner, index)))
            assert label_text(page) == f"{instances[index]['class_name']} {instances[index]['score']:.3f}"
        assert page.get_by_test_id("instance-item").count() == int(
            (owner >= 0).any() and len(set(owner[owner >= 0].ravel()))
        )
    finally:
        context.close()
