"""Molding (resize + pad + mean) against the reference, channel layouts, resize modes."""

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
