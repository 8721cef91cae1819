"""Detections: the engine's typed output — box order, dropped empty boxes, per-box masks, matterport's dict."""

from __future__ import annotations

import numpy as np
import pytest

from backend.mrcnn.config import Config
from backend.mrcnn.detections import Detections
from backend.mrcnn.imaging import mold_image


def one_image_detections():
    config = Config(NUM_CLASSES=3, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=128)
    _, _, molding = mold_image(np.zeros((50, 100, 3), np.uint8), config)
    (wy1, wx1, wy2, wx2) = molding.window  # (32, 0, 96, 128) in the 128 x 128 molded image
    rows = np.zeros((4, 6), np.float32)
    # the whole image window, normalised as the network sees it (1.0 = last pixel)
    rows[0] = [wy1 / 127, wx1 / 127, (wy2 - 1) / 127, (wx2 - 1) / 127, 2, 0.9]
    rows[1] = [0.6, 0.5, 0.5, 0.6, 1, 0.8]  # no area once in image pixels: dropped, as matterport does
    # the left half of the image's bottom half: rows 25..49, columns 0..49 (normalised in the window)
    rows[2] = [(wy1 + 32) / 127, wx1 / 127, (wy2 - 1) / 127, (wx1 + 63) / 127, 1, 0.7]
    masks = np.zeros((4, 28, 28), np.float32)
    masks[0] = 1.0
    masks[2, :, 14:] = 1.0  # right half of its box
    return Detections.from_graph(rows, masks, molding.original_shape, molding.molded_shape, molding.window)


def test_boxes_are_x1_y1_x2_y2_pixels_and_empty_boxes_drop():
    found = one_image_detections()
    assert len(found) == 2 and found.image_size == (50, 100)
    assert found.boxes.dtype == np.int32 and found.boxes.tolist() == [[0, 0, 100, 50], [0, 25, 50, 50]]
    assert found.class_ids.tolist() == [2, 1] and found.scores.tolist() == [
        pytest.approx(0.9),
        pytest.approx(0.7),
    ]
    assert found.masks.shape == (2, 28, 28) and found.masks.dtype == np.float32


def test_box_mask_is_at_box_resolution_and_full_mask_places_it():
    found = one_image_detections()
    box = found.box_mask(1)
    assert box.shape == (25, 50) and box.dtype == bool
    assert box[:, 26:].all() and not box[:, :24].any()
    full = found.full_mask(1)
    assert full.shape == (50, 100) and full.sum() == box.sum()
    np.testing.assert_array_equal(full[25:50, 0:50], box)


def test_matterport_dict_has_rois_y1_x1_y2_x2_and_full_masks():
    found = one_image_detections()
    result = found.to_matterport()
    assert result["rois"].tolist() == [[0, 0, 50, 100], [25, 0, 50, 50]]
    assert result["class_ids"].tolist() == [2, 1] and result["scores"].dtype == np.float32
    assert result["masks"].shape == (50, 100, 2) and result["masks"].dtype == bool
    assert result["masks"][5:45, 5:95, 0].all()
    np.testing.assert_array_equal(result["masks"][..., 1], found.full_mask(1))


def test_no_detections():
    found = Detections.from_graph(
        np.zeros((3, 6)), np.zeros((0, 28, 28)), (10, 20, 3), (64, 64, 3), (0, 0, 32, 64)
    )
    assert len(found) == 0 and found.boxes.shape == (0, 4)
    result = found.to_matterport()
    assert result["rois"].shape == (0, 4) and result["masks"].shape == (10, 20, 0)


def test_counts_must_agree():
    with pytest.raises(ValueError, match="disagree in count"):
        Detections(
            np.zeros((2, 4), np.int32),
            np.ones(2, np.int32),
            np.ones(1, np.float32),
            np.zeros((2, 28, 28)),
            (5, 5),
        )


@pytest.mark.parametrize(("height", "width"), [(1, 1), (3, 50), (57, 29), (600, 300)])
def test_box_resolution_mask_is_the_bilinear_resize_thresholded(height, width):
    from backend.mrcnn.detections import box_resolution_mask
    from backend.mrcnn.imaging import resize_bilinear

    probabilities = np.random.default_rng(height).random((28, 28)).astype(np.float32)
    expected = resize_bilinear(probabilities, height, width).astype(np.float32) >= 0.5
    np.testing.assert_array_equal(box_resolution_mask(probabilities, height, width), expected)
