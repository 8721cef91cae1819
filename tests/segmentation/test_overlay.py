"""render_overlay: masks tinted in their instance colour, everything else left alone, size kept."""

from __future__ import annotations

import numpy as np
import pytest
from detections_kit import boxed_masks
from PIL import Image

from backend.segmentation.overlay import MASK_ALPHA, instance_color, render_overlay
from backend.segmentation.result import SegmentationResult

CLASS_NAMES = ["BG", "person", "cat"]
H, W = 120, 160


def photo():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def result_with_two_instances():
    masks = np.zeros((H, W, 2), dtype=bool)
    masks[20:70, 20:80, 0] = True
    masks[60:110, 90:150, 1] = True
    dets = boxed_masks([[20, 20, 80, 70], [90, 60, 150, 110]], [1, 2], [0.9, 0.8], masks)
    return SegmentationResult.from_detections(dets, CLASS_NAMES), masks


def test_size_is_preserved_and_image_is_rgb():
    result, _ = result_with_two_instances()
    out = render_overlay(Image.fromarray(photo()), result)
    assert out.size == (W, H) and out.mode == "RGB"


def test_mask_interior_is_tinted_with_the_instance_colour():
    image = photo()
    result, masks = result_with_two_instances()
    out = np.asarray(render_overlay(image, result)).astype(int)
    # Interior of instance 1 (rows 60..110, cols 90..150): away from its outline and dashed box, and below the
    # caption, which sits in the box's top-left corner.
    rows, cols = slice(90, 105), slice(100, 145)
    expected = np.rint(image[rows, cols] * (1 - MASK_ALPHA) + np.array(instance_color(1)) * MASK_ALPHA)
    np.testing.assert_array_equal(out[rows, cols], expected)


def test_outline_is_drawn_in_the_instance_colour():
    result, masks = result_with_two_instances()
    out = np.asarray(render_overlay(photo(), result))
    # Instance 1's mask edge at column 149 (its right side) lies inside its box (x2 = 150 is exclusive, the
    # dashed box covers columns 148..149 only in dashes), so compare the mask's left edge below the caption.
    left_edge = out[90:110, 90]
    interior = out[90:110, 91]
    assert (left_edge == instance_color(1)).all()
    assert not (interior == instance_color(1)).all()


def test_boxes_are_dashed_and_partly_transparent():
    image = photo()
    masks = np.zeros((H, W, 1), dtype=bool)
    masks[40:60, 40:60, 0] = True  # well inside its box
    dets = boxed_masks([[20, 20, 120, 100]], [1], [0.9], masks)
    result = SegmentationResult.from_detections(dets, CLASS_NAMES)
    out = np.asarray(render_overlay(image, result)).astype(int)
    # The bottom side of the box (y2 = 100 exclusive) runs along rows 98..100; no caption or mask there.
    band = slice(97, 102)
    changed = (out[band, 25:115] != image[band, 25:115]).any(axis=(0, 2))
    assert changed.any() and not changed.all()  # dashes and gaps
    # A dash pixel is the colour laid over the photo at 70%, not painted solid.
    rows, cols = np.nonzero((out[band, 25:115] != image[band, 25:115]).any(axis=2))
    r, c = rows[0] + 97, cols[0] + 25
    expected = np.rint(image[r, c] * 0.3 + np.array(instance_color(0)) * 0.7)
    assert np.abs(out[r, c] - expected).max() <= 1


def test_pixels_outside_masks_boxes_and_captions_are_unchanged():
    image = photo()
    result, _ = result_with_two_instances()
    out = np.asarray(render_overlay(image, result))
    np.testing.assert_array_equal(out[0:18, :], image[0:18, :])  # above every box
    np.testing.assert_array_equal(out[:, 152:], image[:, 152:])  # right of every box
    np.testing.assert_array_equal(out[75:, 0:85], image[75:, 0:85])  # below box 0, left of box 1


def test_instance_colours_are_deterministic_and_distinct():
    colours = [instance_color(i) for i in range(20)]
    assert colours == [instance_color(i) for i in range(20)]
    assert len(set(colours)) == 20


def test_no_instances_leave_the_image_untouched():
    image = photo()
    out = render_overlay(image, SegmentationResult(W, H, ()))
    np.testing.assert_array_equal(np.asarray(out), image)


def test_size_mismatch_is_an_error():
    result, _ = result_with_two_instances()
    with pytest.raises(ValueError, match="160x120"):
        render_overlay(np.zeros((10, 10, 3), np.uint8), result)


def test_instance_colours_match_the_browser_view():
    import json
    import shutil
    import subprocess
    from pathlib import Path

    colors_js = Path(__file__).resolve().parents[2] / "frontend" / "src" / "colors.js"
    if not shutil.which("node") or not colors_js.exists():
        pytest.skip("node or frontend/src/colors.js not available")
    script = f"import('{colors_js.as_uri()}').then(m => console.log(JSON.stringify([...Array(40).keys()].map(m.instanceColor))))"
    out = subprocess.run(
        ["node", "-e", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert [list(instance_color(i)) for i in range(40)] == json.loads(out)


def test_a_caption_near_the_edge_moves_inside_the_image():
    image = np.zeros((H, W, 3), np.uint8)
    masks = np.zeros((H, W, 1), dtype=bool)
    masks[H - 4 :, W - 4 :, 0] = True
    dets = boxed_masks([[W - 4, H - 4, W, H]], [2], [0.75], masks)
    out = np.asarray(render_overlay(image, SegmentationResult.from_detections(dets, CLASS_NAMES)))
    white = out.min(axis=2) > 150  # anti-aliased white text
    # The caption "cat 0.750" is white text; drawn at the box corner it would fall off the bottom-right.
    assert white[:, : W - 10].sum() > 20
    assert white[: H - 4, :].sum() > 20
