"""Molding (resize + pad + mean) against the reference, channel layouts, resize modes, unmolding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mrcnn_parity import config_from, load_input

from backend.mrcnn.config import Config
from backend.mrcnn.imaging import (
    as_rgb,
    mold_image,
    parse_image_meta,
    resize_bilinear,
    resize_image,
    unmold_detections,
    unmold_mask,
)

CASES = [
    "coco_astronaut",
    "coco_chelsea",
    "coco_synthetic",
    "small_astronaut",
    "small_chelsea",
    "small_synthetic",
    "small_batch2_astronaut+synthetic",
]


@pytest.mark.parametrize("case", CASES)
def test_molding_matches_reference(parity_dir, case):
    info = json.loads((parity_dir / "MANIFEST.json").read_text())["cases"][case]
    config = config_from(parity_dir, info["config_json"][len("config_") : -len(".json")])
    ref = np.load(parity_dir / info["file"])
    for b, name in enumerate(info["images"]):
        molded, meta, molding = mold_image(load_input(parity_dir, name), config)
        diff = np.abs(molded - ref["molded_images"][b])
        # Resizing truncates to uint8: an arithmetic difference of 1 ulp could flip a pixel by 1 level. We
        # reproduce scipy's arithmetic, so none flips here; allow a handful in case numpy's rounding moves.
        assert diff.max() <= 1.0 + 1e-4 and (diff > 1e-4).mean() <= 1e-4
        np.testing.assert_array_equal(meta, ref["image_metas"][b])
        assert molding.window == tuple(ref["windows"][b])


def test_image_meta_round_trip():
    config = Config(NUM_CLASSES=3, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=128)
    _, meta, _ = mold_image(np.zeros((50, 100, 3), np.uint8), config)
    fields = parse_image_meta(meta)
    assert fields["original_image_shape"].tolist() == [50, 100, 3]
    assert fields["image_shape"].tolist() == [128, 128, 3]
    assert fields["window"].tolist() == [32, 0, 96, 128]
    assert fields["scale"] == pytest.approx(1.28)
    assert meta.shape == (config.IMAGE_META_SIZE,)


def test_channel_layouts_become_rgb():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = np.stack([gray] * 3, axis=-1)
    np.testing.assert_array_equal(as_rgb(gray), rgb)
    np.testing.assert_array_equal(as_rgb(gray[..., None]), rgb)
    rgba = np.concatenate([rgb, np.full((3, 4, 1), 7, np.uint8)], axis=-1)
    np.testing.assert_array_equal(as_rgb(rgba), rgb)
    assert as_rgb(rgb.astype(np.float32)).dtype == np.float32
    assert as_rgb(np.ones((2, 2), bool)).max() == 255


@pytest.mark.parametrize("shape", [(3, 4, 2), (2, 3, 4, 3), (0, 4, 3), (5,)])
def test_unusable_shapes_are_named(shape):
    with pytest.raises(ValueError, match="shape|pixels"):
        as_rgb(np.zeros(shape, np.uint8))


def test_strings_are_not_images():
    with pytest.raises(ValueError, match="dtype"):
        as_rgb(np.array([["a"]]))


def test_bilinear_resize_blends_edges_with_black_when_enlarging():
    image = np.full((1, 1), 4.0)
    np.testing.assert_array_equal(resize_bilinear(image, 2, 2), np.full((2, 2), 4.0 * 0.75 * 0.75))
    ramp = np.arange(6, dtype=np.float64).reshape(2, 3)
    np.testing.assert_array_equal(resize_bilinear(ramp, 2, 3), ramp)  # same size: unchanged
    np.testing.assert_allclose(resize_bilinear(np.arange(4.0).reshape(1, 4), 1, 2), [[0.5, 2.5]])


def test_resize_modes():
    image = np.full((100, 150, 3), 200, np.uint8)
    same, window, scale, _, _ = resize_image(image, 64, 128, mode="none")
    assert same is image and window == (0, 0, 100, 150) and scale == 1

    square, window, scale, padding, _ = resize_image(image, 80, 128, mode="square")
    assert square.shape == (128, 128, 3) and square.dtype == np.uint8
    assert scale == pytest.approx(128 / 150) and window == (21, 0, 21 + 85, 128)
    assert padding[0] == (21, 22) and square[0].max() == 0 and square[64, 64, 0] == 200

    padded, window, scale, _, _ = resize_image(image, 128, None, mode="pad64")
    assert scale == pytest.approx(1.28) and padded.shape == (128, 192, 3) and window == (0, 0, 128, 192)

    cropped, window, _, _, crop = resize_image(image, 64, None, mode="crop", crop_offset=(3, 5))
    assert cropped.shape == (64, 64, 3) and window == (0, 0, 64, 64) and crop == (3, 5, 64, 64)

    with pytest.raises(ValueError, match="stretch"):
        resize_image(image, 64, 128, mode="stretch")


def test_unmold_maps_boxes_back_and_drops_empty_ones():
    config = Config(NUM_CLASSES=3, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=128)
    _, meta, molding = mold_image(np.zeros((50, 100, 3), np.uint8), config)
    (wy1, wx1, wy2, wx2) = molding.window  # (32, 0, 96, 128) in the 128 x 128 molded image
    detections = np.zeros((4, 6), np.float32)
    # the whole image window, normalised as the network sees it (1.0 = last pixel)
    detections[0] = [wy1 / 127, wx1 / 127, (wy2 - 1) / 127, (wx2 - 1) / 127, 2, 0.9]
    detections[1] = [0.6, 0.5, 0.5, 0.6, 1, 0.8]  # no area once in image pixels: dropped, as matterport does
    masks = np.zeros((4, 28, 28, 3), np.float32)
    masks[0, :, :, 2] = 1.0
    result = unmold_detections(
        detections, masks, molding.original_shape, molding.molded_shape, molding.window
    )
    assert result["rois"].tolist() == [[0, 0, 50, 100]]
    assert result["class_ids"].tolist() == [2] and result["scores"].tolist() == [pytest.approx(0.9)]
    assert result["masks"].shape == (50, 100, 1) and result["masks"].dtype == bool
    assert result["masks"][5:45, 5:95].all()


def test_unmold_with_no_detections():
    result = unmold_detections(
        np.zeros((3, 6)), np.zeros((3, 28, 28, 2)), (10, 20, 3), (64, 64, 3), (0, 0, 32, 64)
    )
    assert result["rois"].shape == (0, 4) and result["masks"].shape == (10, 20, 0)


def test_unmold_mask_thresholds_and_places():
    mask = np.zeros((4, 4), np.float32)
    mask[:, 2:] = 1.0
    full = unmold_mask(mask, (2, 4, 6, 12), (10, 16))
    assert full.dtype == bool and full.shape == (10, 16)
    assert not full[:2].any() and not full[:, :4].any() and not full[:, 12:].any()
    assert full[2:6, 9:12].all() and not full[2:6, 4:7].any()
