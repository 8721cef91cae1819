"""The result viewer in real Chromium, on results inserted through storage (masks we chose).

Points are chosen from the decoded masks (pycocotools), never from boxes, and mapped to the screen through the
overlay canvas' on-screen rectangle.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from .support import (
    VIEWER_READY,
    artifact,
    decode_mask,
    insert_failed_job,
    interior_point,
    label_text,
    next_frames,
    open_result,
    synthetic_result,
    to_screen,
    top_instance_map,
)

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 640, 480


@pytest.fixture(scope="module")
def scene():
    """A 640x480 result with overlapping objects, and who is on top at every pixel."""
    result, image = synthetic_result(WIDTH, HEIGHT, 14, seed=5)
    return result, image, top_instance_map(result)


def open_viewer(context, web_app, result, image, filename="scene.png"):
    """Make the visitor's identity, give them a finished job with ``result`` and open its viewer page."""
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    job_id = open_result(page, web_app, result, image, filename)
    page.js_errors = errors
    return page, job_id


def hover_pixel(page, result, x, y):
    page.mouse.move(*to_screen(page, result, x, y))


def expected_label(instance):
    return f"{instance['class_name']} {instance['score']:.3f}"


def overlay_alpha(page, x, y):
    return page.evaluate(
        "([x, y]) => document.querySelector('[data-testid=overlay]').getContext('2d').getImageData(x, y, 1, 1).data[3]",
        [x, y],
    )


def overlap_pixel(result, owner):
    """A pixel covered by two masks (well inside both), and the two instance indices (top, beneath)."""
    masks = [decode_mask(inst["mask"]) for inst in result["instances"]]
    stack = np.stack(masks)
    for top in range(len(masks)):
        for below in range(top + 1, len(masks)):
            both = stack[top] & stack[below]
            if both.sum() < 400:
                continue
            # Deep inside the overlap: erode by checking a 9x9 neighbourhood.
            ys, xs = np.nonzero(both)
            for y, x in zip(ys[:: max(1, len(ys) // 200)], xs[:: max(1, len(xs) // 200)], strict=True):
                if both[max(0, y - 4) : y + 5, max(0, x - 4) : x + 5].all() and owner[y, x] == top:
                    return int(x), int(y), top, below
    raise AssertionError("the synthetic scene has no overlapping masks")


def test_overlay_lies_exactly_over_the_photo_at_its_resolution(context, web_app, scene):
    result, image, _ = scene
    page, _ = open_viewer(context, web_app, result, image)
    overlay = page.get_by_test_id("overlay")
    img = page.get_by_test_id("result-image")
    a, b = overlay.bounding_box(), img.bounding_box()
    for key in ("x", "y", "width", "height"):
        assert abs(a[key] - b[key]) < 0.5, (key, a, b)
    size = overlay.evaluate("c => [c.width, c.height]")
    assert size == [WIDTH, HEIGHT]
    assert page.js_errors == []


def test_hover_labels_the_instance_on_top_per_pixel_not_per_box(context, web_app, scene):
    result, image, owner = scene
    page, _ = open_viewer(context, web_app, result, image)
    instances = result["instances"]

    # Where two masks overlap, the higher-scored one is drawn on top and wins the hover.
    x, y, top, below = overlap_pixel(result, owner)
    assert instances[top]["score"] >= instances[below]["score"]
    hover_pixel(page, result, x, y)
    assert label_text(page) == expected_label(instances[top])
    page.screenshot(path=artifact("viewer-hover-overlap.png"))

    # Every instance that shows somewhere is found at a pixel of its own mask.
    for index, inst in enumerate(instances):
        if not (owner == index).any():
            continue
        px, py = interior_point(owner, index)
        hover_pixel(page, result, px, py)
        assert label_text(page) == expected_label(inst), index

    # Inside a box but outside its (elliptical) mask, with nothing else there: no label.
    for inst in instances:
        x1, y1, _x2, _y2 = inst["box"]
        if owner[y1 + 1, x1 + 1] == -1:
            hover_pixel(page, result, x1 + 1, y1 + 1)
            assert label_text(page) is None
            break
    else:
        pytest.fail("no box corner outside every mask in the scene")

    # Leaving the image hides the label.
    page.mouse.move(5, 5)
    assert label_text(page) is None
    assert page.js_errors == []


def test_legend_toggles_a_class_and_uncovers_what_lies_beneath(context, web_app, scene):
    result, image, owner = scene
    page, _ = open_viewer(context, web_app, result, image)
    instances = result["instances"]
    x, y, top, below = overlap_pixel(result, owner)
    top_class, below_class = instances[top]["class_name"], instances[below]["class_name"]

    items = page.get_by_test_id("legend-item")
    names = [items.nth(i).get_attribute("data-class-name") for i in range(items.count())]
    counts = {name: sum(1 for i in instances if i["class_name"] == name) for name in names}
    for i, name in enumerate(names):
        assert items.nth(i).inner_text().split("\n")[-1].strip() == str(counts[name])
    assert sorted(names) == sorted({i["class_name"] for i in instances})

    hidden = page.locator(f'[data-testid=legend-item][data-class-name="{top_class}"]')
    hidden.click()
    page.wait_for_function(
        "cls => document.querySelector(`[data-class-name=\"${cls}\"]`).getAttribute('aria-pressed') === 'false'",
        arg=top_class,
    )
    page.mouse.move(5, 5)
    hover_pixel(page, result, x, y)
    if below_class != top_class:
        assert label_text(page) == expected_label(instances[below])
    # No instance of the hidden class answers the pointer or shows on the overlay.
    for index, inst in enumerate(instances):
        if inst["class_name"] != top_class or not (owner == index).any():
            continue
        px, py = interior_point(owner, index)
        hover_pixel(page, result, px, py)
        text = label_text(page)
        assert text is None or not text.startswith(top_class + " "), text
        if text is None:
            assert overlay_alpha(page, px, py) == 0
    page.screenshot(path=artifact("viewer-class-hidden.png"))

    hidden.click()
    page.mouse.move(5, 5)
    hover_pixel(page, result, x, y)
    assert label_text(page) == expected_label(instances[top])


def test_score_threshold_hides_low_scores(context, web_app, scene):
    result, image, owner = scene
    page, _ = open_viewer(context, web_app, result, image)
    instances = result["instances"]
    lowest = min(range(len(instances)), key=lambda i: (instances[i]["score"], not (owner == i).any()))
    px, py = interior_point(owner, lowest)
    hover_pixel(page, result, px, py)
    assert label_text(page) == expected_label(instances[lowest])

    threshold = round(instances[lowest]["score"] + 0.005, 2)
    page.get_by_test_id("score-slider").fill(str(threshold))
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=instance-item]').length === n",
        arg=sum(1 for i in instances if i["score"] >= threshold),
    )
    page.mouse.move(5, 5)
    hover_pixel(page, result, px, py)
    text = label_text(page)
    assert text != expected_label(instances[lowest])


def test_click_pins_and_downloads(context, web_app, scene, tmp_path):
    result, image, owner = scene
    page, _ = open_viewer(context, web_app, result, image)
    index = 0
    px, py = interior_point(owner, index)
    page.mouse.click(*to_screen(page, result, px, py))
    page.mouse.move(5, 5)
    # The pinned instance stays selected (and labelled) after the pointer leaves.
    assert label_text(page) == expected_label(result["instances"][index])
    assert (
        page.locator(f"[data-testid=instance-item][data-index='{index}']").get_attribute("aria-pressed")
        == "true"
    )

    with page.expect_download() as download:
        page.get_by_test_id("download-cutout").click()
    cutout_path = tmp_path / "cutout.png"
    download.value.save_as(cutout_path)
    cutout = np.asarray(Image.open(cutout_path).convert("RGBA"))
    own = decode_mask(result["instances"][index]["mask"])
    ys, xs = np.nonzero(own)
    crop = own[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert cutout.shape[:2] == crop.shape
    assert np.array_equal(cutout[..., 3] > 0, crop)
    photo = np.asarray(image)[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert np.abs(cutout[..., :3][crop].astype(int) - photo[crop].astype(int)).max() <= 2

    with page.expect_download() as download:
        page.get_by_test_id("download-json").click()
    json_path = tmp_path / "result.json"
    download.value.save_as(json_path)
    assert json.loads(json_path.read_text()) == result

    with page.expect_download() as download:
        page.get_by_test_id("download-overlay").click()
    overlay_path = tmp_path / "overlay.png"
    download.value.save_as(overlay_path)
    assert_overlay_download_holds_the_photo(Image.open(overlay_path), image, result, owner)

    page.keyboard.press("Escape")
    assert label_text(page) is None


def assert_overlay_download_holds_the_photo(download, photo, result, owner):
    """The "Overlay PNG": opaque everywhere, the photo itself where no mask, box or caption is drawn."""
    assert download.size == (WIDTH, HEIGHT)
    pixels = np.asarray(download.convert("RGBA")).astype(int)
    assert (pixels[..., 3] == 255).all(), "the download is transparent in places"
    clear = owner == -1
    for inst in result["instances"]:  # boxes, and room for a caption above or below each
        x1, y1, x2, y2 = inst["box"]
        clear[max(0, y1 - 24) : y2 + 24, max(0, x1 - 4) : x2 + 140] = False
    assert clear.sum() > 1000
    photo_pixels = np.asarray(photo.convert("RGB")).astype(int)
    assert np.abs(pixels[..., :3][clear] - photo_pixels[clear]).max() <= 2
    # Where a mask lies the photo shows through its tinted fill: neither the bare photo nor a flat colour.
    inside = owner >= 0
    assert np.abs(pixels[..., :3][inside] - photo_pixels[inside]).mean() > 5


def test_keyboard_tabs_through_instances(context, web_app, scene):
    result, image, _ = scene
    page, _ = open_viewer(context, web_app, result, image)
    first = page.locator("[data-testid=instance-item]").first
    first.focus()
    assert label_text(page) == expected_label(result["instances"][0])
    page.keyboard.press("Tab")
    assert label_text(page) == expected_label(result["instances"][1])
    page.keyboard.press("Enter")
    assert page.locator("[data-testid=instance-item][data-index='1']").get_attribute("aria-pressed") == "true"
    assert page.get_by_test_id("download-cutout").is_enabled()
    # Escape unpins; the keyboard stays on the list.
    page.keyboard.press("Escape")
    assert (
        page.locator("[data-testid=instance-item][data-index='1']").get_attribute("aria-pressed") == "false"
    )
    assert page.get_by_test_id("download-cutout").is_disabled()
    assert page.evaluate("document.activeElement.dataset.testid") == "instance-item"


def test_phone_width_fits_the_screen(browser, web_app, scene):
    result, image, owner = scene
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True
    )
    try:
        page, _ = open_viewer(context, web_app, result, image)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        a = page.get_by_test_id("overlay").bounding_box()
        b = page.get_by_test_id("result-image").bounding_box()
        assert abs(a["width"] - b["width"]) < 0.5 and a["width"] <= 390
        px, py = interior_point(owner, 0)
        page.mouse.move(*to_screen(page, result, px, py))
        assert label_text(page) == expected_label(result["instances"][0])
        page.screenshot(path=artifact("viewer-phone.png"), full_page=True)
    finally:
        context.close()


def test_a_tall_photo_on_a_laptop_fits_the_window_and_is_centred_beside_the_controls(browser, web_app):
    """A portrait photo is shown whole (at most 82% of the window's height, its aspect kept) in the middle of its
    column, not against its left edge with an empty band between it and the controls; hover still finds objects."""
    result, image = synthetic_result(600, 900, 8, seed=11)
    owner = top_instance_map(result)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page, _ = open_viewer(context, web_app, result, image, "portrait.png")
        photo = page.get_by_test_id("overlay").bounding_box()
        column = page.locator(".stage-wrap").bounding_box()
        assert photo["height"] <= 0.82 * 800 + 0.5
        assert abs(photo["width"] / photo["height"] - 600 / 900) < 0.01
        left = photo["x"] - column["x"]
        right = column["x"] + column["width"] - (photo["x"] + photo["width"])
        assert left > 50 and abs(left - right) <= 1, (left, right)
        index = max(range(len(result["instances"])), key=lambda i: result["instances"][i]["box"][0])
        hover_pixel(page, result, *interior_point(owner, index))
        assert label_text(page) == expected_label(result["instances"][index])
        page.screenshot(path=artifact("viewer-portrait-laptop.png"))
    finally:
        context.close()


def test_share_link_opens_read_only_without_cookies_and_the_job_stays_private(
    browser, context, web_app, scene
):
    result, image, owner = scene
    page, job_id = open_viewer(context, web_app, result, image)
    page.get_by_test_id("share-button").click()
    share_url = page.get_by_test_id("share-url")
    share_url.wait_for(state="visible")
    link = share_url.inner_text()
    assert re.fullmatch(re.escape(web_app.base_url) + r"/s/[A-Za-z0-9_-]{22,}", link), link
    assert share_url.get_attribute("href") == link
    digest = "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) >>> 0; return h; }"
    owner_overlay = page.get_by_test_id("overlay").evaluate(digest)

    stranger = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        shared = stranger.new_page()
        shared.goto(link)
        shared.wait_for_selector(VIEWER_READY, timeout=30_000)
        assert stranger.cookies() == [] or all(c["name"] != "maskweb_id" for c in stranger.cookies())
        assert shared.get_by_test_id("overlay").evaluate(digest) == owner_overlay
        assert shared.get_by_test_id("share-button").count() == 0
        px, py = interior_point(owner, 0)
        shared.mouse.move(*to_screen(shared, result, px, py))
        assert label_text(shared) == expected_label(result["instances"][0])
        og = shared.locator('meta[property="og:image"]').get_attribute("content")
        assert og.endswith("/thumbnail") and "/api/shared/" in og
        shared.screenshot(path=artifact("shared-page.png"))

        # The link opens the shared result, not the owner's job page.
        shared.goto(f"{web_app.base_url}/jobs/{job_id}")
        error = shared.get_by_test_id("error")
        error.wait_for(state="visible")
        assert shared.locator(VIEWER_READY).count() == 0
        assert shared.get_by_test_id("overlay").count() == 0
        shared.screenshot(path=artifact("job-page-refused.png"))
    finally:
        stranger.close()


def test_stop_sharing_revokes_the_link(browser, context, web_app, scene):
    result, image, _ = scene
    page, _ = open_viewer(context, web_app, result, image)
    page.get_by_test_id("share-button").click()
    share_url = page.get_by_test_id("share-url")
    share_url.wait_for(state="visible")
    link = share_url.inner_text()
    page.get_by_test_id("unshare-button").click()
    share_url.wait_for(state="hidden")

    stranger = browser.new_context()
    try:
        shared = stranger.new_page()
        response = shared.goto(link)
        assert response.status == 404
        shared.get_by_test_id("error").wait_for()
        assert "revoked" in shared.get_by_test_id("error").inner_text()
        assert shared.get_by_test_id("overlay").count() == 0
    finally:
        stranger.close()


def test_weights_missing_is_said_on_the_page(context, web_app):
    page = context.new_page()
    page.goto(web_app.base_url + "/")
    banner = page.get_by_test_id("weights-missing")
    assert banner.is_visible()
    assert "weights" in banner.inner_text().lower()


def overlay_pixel(page, x, y):
    return page.evaluate(
        "([x, y]) => Array.from(document.querySelector('[data-testid=overlay]').getContext('2d').getImageData(x, y, 1, 1).data)",
        [x, y],
    )


def change_setting(page, action):
    """Do ``action`` and wait until the viewer has re-rendered."""
    action()
    next_frames(page)


def test_colouring_opacity_boxes_and_outlines(context, web_app, scene):
    result, image, owner = scene
    page, _ = open_viewer(context, web_app, result, image)
    instances = result["instances"]
    by_class = {}
    for index, inst in enumerate(instances):
        if (owner == index).any():
            by_class.setdefault(inst["class_name"], []).append(index)
    same = next(v for v in by_class.values() if len(v) >= 2)
    a, b = (interior_point(owner, i) for i in same[:2])

    # Instance colouring: two objects of one class differ; semantic colouring: they match.
    assert overlay_pixel(page, *a)[:3] != overlay_pixel(page, *b)[:3]
    change_setting(page, lambda: page.get_by_test_id("coloring-semantic").check())
    assert overlay_pixel(page, *a) == overlay_pixel(page, *b)
    page.screenshot(path=artifact("viewer-semantic.png"))
    change_setting(page, lambda: page.get_by_test_id("coloring-instance").check())

    # Opacity scales the mask fill.
    full = overlay_pixel(page, *a)[3]
    change_setting(page, lambda: page.get_by_test_id("opacity-slider").fill("0.2"))
    faint = overlay_pixel(page, *a)[3]
    assert 0 < faint < full
    assert abs(faint - 0.2 * 255) <= 3

    # Boxes: the bottom-right corner of a box, where no mask lies, is drawn only while boxes are on.
    edge_row = None
    for inst in instances:
        _x1, _y1, x2, y2 = inst["box"]
        if owner[y2 - 8 : y2, x2 - 8 : x2].max() == -1:
            edge_row = (x2 - 8, y2 - 8, 8, 8)
            break
    assert edge_row is not None
    row_alpha = (
        "([x, y, w, h]) => { const d = document.querySelector('[data-testid=overlay]').getContext('2d')"
        ".getImageData(x, y, w, h).data; let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"
    )
    assert page.evaluate(row_alpha, list(edge_row)) > 0
    change_setting(page, lambda: page.get_by_test_id("toggle-boxes").uncheck())
    assert page.evaluate(row_alpha, list(edge_row)) == 0

    # Outlines: an instance's edge pixel is drawn opaque over the faint fill, until outlines are off.
    index = same[0]
    mask = owner == index
    ys, xs = np.nonzero(mask)
    edge = (int(xs.min()), int(ys[xs == xs.min()][0]))
    assert overlay_pixel(page, *edge)[3] == 255
    change_setting(page, lambda: page.get_by_test_id("toggle-outlines").uncheck())
    assert overlay_pixel(page, *edge)[3] == faint


def test_a_result_without_objects_says_so(context, web_app):
    result, image = synthetic_result(320, 240, 0, seed=9)
    page, _ = open_viewer(context, web_app, result, image)
    assert "No objects were found" in page.locator(".legend").inner_text()
    assert page.get_by_test_id("legend-item").count() == 0
    page.mouse.move(*to_screen(page, result, 160, 120))
    assert label_text(page) is None
    assert page.js_errors == []


def swatch_colors(page, testid):
    return page.eval_on_selector_all(
        f"[data-testid={testid}] .swatch", "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )


def clean_left_edge(owner, index):
    """A left-edge pixel of ``index`` with background on its left and only ``index`` around it on its right,
    so no other instance's outline is drawn there; None if there is none."""
    ys, xs = np.nonzero(owner == index)
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        if x >= 4 and (owner[y, x - 4 : x] == -1).all() and (owner[y - 3 : y + 4, x : x + 4] == index).all():
            return x, y
    return None


def test_class_colouring_recolours_the_legend_and_the_instance_list(context, web_app, scene):
    result, image, owner = scene
    page, _ = open_viewer(context, web_app, result, image)
    instances = result["instances"]
    change_setting(page, lambda: page.get_by_test_id("coloring-semantic").check())

    # Each legend swatch is the colour its class's masks are drawn in (an outline pixel is drawn opaque).
    legend = page.get_by_test_id("legend-item")
    for n in range(legend.count()):
        name = legend.nth(n).get_attribute("data-class-name")
        edge = next(
            p
            for i, inst in enumerate(instances)
            if inst["class_name"] == name
            for p in [clean_left_edge(owner, i)]
            if p is not None
        )
        r, g, b, a = overlay_pixel(page, *edge)
        assert a == 255
        swatch = legend.nth(n).locator(".swatch").evaluate("e => getComputedStyle(e).backgroundColor")
        drawn = [int(v) for v in swatch[4:-1].split(",")]
        assert max(abs(p - q) for p, q in zip(drawn, (r, g, b), strict=True)) <= 2, (name, swatch, (r, g, b))

    # In the instance list, objects of one class share their class's colour.
    list_colors = swatch_colors(page, "instance-item")
    by_class = {}
    for item, color in zip(page.get_by_test_id("instance-item").all(), list_colors, strict=True):
        name = instances[int(item.get_attribute("data-index"))]["class_name"]
        by_class.setdefault(name, set()).add(color)
    assert all(len(colors) == 1 for colors in by_class.values()), by_class
    assert len({next(iter(c)) for c in by_class.values()}) == len(by_class)

    change_setting(page, lambda: page.get_by_test_id("coloring-instance").check())
    assert len(set(swatch_colors(page, "instance-item"))) == len(list_colors)


def test_enter_on_a_legend_class_keeps_the_keyboard_there(context, web_app, scene):
    result, image, _ = scene
    page, _ = open_viewer(context, web_app, result, image)
    first = page.get_by_test_id("legend-item").first
    name = first.get_attribute("data-class-name")
    first.focus()
    page.keyboard.press("Enter")
    next_frames(page)
    focused = page.evaluate(
        "() => [document.activeElement.dataset.className, document.activeElement.getAttribute('aria-pressed')]"
    )
    assert focused == [name, "false"]
    page.keyboard.press("Space")
    next_frames(page)
    assert page.evaluate("() => document.activeElement.getAttribute('aria-pressed')") == "true"
    # Tab goes on to the next class from there, not back to the top of the page.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.dataset.testid") == "legend-item"


def document_listeners(page, cdp, event_type):
    """How many listeners of ``event_type`` the document has (Chromium's DevTools protocol)."""
    handle = cdp.send("Runtime.evaluate", {"expression": "document"})["result"]["objectId"]
    listeners = cdp.send("DOMDebugger.getEventListeners", {"objectId": handle})["listeners"]
    return sum(1 for entry in listeners if entry["type"] == event_type)


def test_destroy_removes_the_viewers_listeners(context, web_app, scene):
    """A second viewer mounted from the module and torn down leaves no listener behind on the document."""
    result, image, _ = scene
    page, job_id = open_viewer(context, web_app, result, image)
    cdp = context.new_cdp_session(page)
    before = document_listeners(page, cdp, "keydown")
    page.evaluate(
        """async (jobId) => {
          const { Viewer } = await import('/assets/viewer.js');
          const result = await (await fetch(`/api/jobs/${jobId}/result`)).json();
          const root = document.createElement('div');
          root.id = 'second-viewer';
          document.body.append(root);
          window.second = new Viewer(root, { result, imageUrl: `/api/jobs/${jobId}/image` });
          await window.second.ready;
        }""",
        job_id,
    )
    assert document_listeners(page, cdp, "keydown") == before + 1
    assert page.locator("#second-viewer canvas").count() == 2
    page.evaluate("() => { window.second.destroy(); delete window.second; }")
    assert document_listeners(page, cdp, "keydown") == before
    assert page.locator("#second-viewer").inner_html() == ""
    # The page's own viewer still answers Escape (its listener was not taken away).
    page.get_by_test_id("instance-item").first.click()
    page.mouse.move(5, 5)
    assert label_text(page) is not None
    page.keyboard.press("Escape")
    assert label_text(page) is None


def test_each_result_tab_has_its_own_title(context, web_app, scene):
    result, image, _ = scene
    page, _ = open_viewer(context, web_app, result, image, filename="kitchen.png")
    assert page.title() == f"kitchen.png: {len(result['instances'])} objects · maskweb"
    empty, empty_image = synthetic_result(160, 120, 0, seed=1)
    other, _ = open_viewer(context, web_app, empty, empty_image, filename="garden.png")
    assert other.title() == "garden.png: 0 objects · maskweb"


def test_a_queued_jobs_page_can_cancel_it(context, web_app):
    page = context.new_page()
    page.goto(web_app.base_url + "/")
    job_id = page.evaluate(
        """async () => { const s = await (await fetch('/api/session')).json();
           const c = document.createElement('canvas'); c.width = 32; c.height = 24;
           const blob = await new Promise(r => c.toBlob(r, 'image/png'));
           const f = new FormData(); f.append('image', blob, 'waiting.png');
           const r = await fetch('/api/jobs', {method: 'POST', body: f, headers: {'X-CSRF-Token': s.csrf_token}});
           return (await r.json()).jobs[0].id; }"""
    )
    page.goto(f"{web_app.base_url}/jobs/{job_id}")
    assert page.get_by_test_id("job-status").inner_text() == "queued"
    assert page.title() == "waiting.png: queued · maskweb"
    page.get_by_test_id("cancel-button").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=job-status]').textContent === 'cancelled'"
    )
    assert page.get_by_test_id("cancel-button").is_hidden()
    assert page.evaluate(f"fetch('/api/jobs/{job_id}').then(r => r.json()).then(j => j.state)") == "cancelled"


def test_a_failed_jobs_page_retries_it_as_a_new_job(context, web_app, scene):
    _, image, _ = scene
    page = context.new_page()
    page.goto(web_app.base_url + "/")
    user_id = page.evaluate("fetch('/api/session').then(r => r.json())")["user_id"]
    failed_id = insert_failed_job(web_app.settings, user_id, image, "broken.png")
    page.goto(f"{web_app.base_url}/jobs/{failed_id}")
    assert "ran out of memory" in page.get_by_test_id("error").inner_text()
    with page.expect_navigation():
        page.get_by_test_id("retry-button").click()
    new_id = page.url.rsplit("/", 1)[-1]
    assert new_id != failed_id
    page.get_by_test_id("job-status").wait_for()
    assert page.get_by_test_id("job-status").inner_text() == "queued"
    job = page.evaluate(f"fetch('/api/jobs/{new_id}').then(r => r.json())")
    assert (job["filename"], job["width"], job["height"]) == ("broken.png", WIDTH, HEIGHT)


def test_sharing_stays_visible_after_a_reload_and_a_second_click_mints_nothing(context, web_app, scene):
    result, image, _ = scene
    page, job_id = open_viewer(context, web_app, result, image)
    share_url = page.get_by_test_id("share-url")
    assert share_url.is_hidden() and page.get_by_test_id("unshare-button").is_hidden()
    page.get_by_test_id("share-button").click()
    share_url.wait_for(state="visible")
    link = share_url.inner_text()

    page.reload()
    page.wait_for_selector(VIEWER_READY)
    assert share_url.is_visible() and share_url.inner_text() == link
    assert page.get_by_test_id("unshare-button").is_visible()
    with page.expect_response(lambda r: r.url.endswith("/share")) as again:
        page.get_by_test_id("share-button").click()
    assert again.value.status == 200  # the live link, not a new one
    assert share_url.inner_text() == link

    page.get_by_test_id("unshare-button").click()
    share_url.wait_for(state="hidden")
    page.reload()
    page.wait_for_selector(VIEWER_READY)
    assert share_url.is_hidden() and page.get_by_test_id("unshare-button").is_hidden()
    page.get_by_test_id("share-button").click()
    share_url.wait_for(state="visible")
    assert share_url.inner_text() != link
