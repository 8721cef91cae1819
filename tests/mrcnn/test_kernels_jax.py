"""The JAX detection kernels against TensorFlow's own ``tf.image`` kernels, bit for bit.

Both run in this process: the JAX functions are plain ``jax.numpy`` (no keras), compiled with ``jax.jit`` the way
they run inside the model's XLA graph, and compared with ``tf.image.non_max_suppression`` /
``tf.image.crop_and_resize`` on random and adversarial inputs.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
jax = pytest.importorskip("jax")

from backend.mrcnn.kernels import jax_ops  # noqa: E402

nms_jit = jax.jit(jax_ops.non_max_suppression, static_argnames=("max_output_size", "tile"))
crop_jit = jax.jit(jax_ops.crop_and_resize, static_argnames=("crop_size",))


def random_boxes(rng, n, scale=1.0, min_side=0.01, max_side=0.3):
    centre = rng.uniform(0.0, 1.0, (n, 2))
    side = rng.uniform(min_side, max_side, (n, 2))
    return (np.concatenate([centre - side / 2, centre + side / 2], axis=1) * scale).astype(np.float32)


def tf_nms(boxes, scores, max_output_size, iou_threshold):
    """TensorFlow's selection, padded like the contract: (indices [max_output_size], count)."""
    selected = tf.image.non_max_suppression(
        boxes, scores, max_output_size, iou_threshold=iou_threshold
    ).numpy()
    padded = np.zeros(max_output_size, np.int32)
    padded[: len(selected)] = selected
    return padded, len(selected)


def assert_nms_matches_tf(boxes, scores, max_output_size, iou_threshold, tile=jax_ops.NMS_TILE):
    boxes = np.asarray(boxes, np.float32)
    scores = np.asarray(scores, np.float32)
    expected, expected_count = tf_nms(boxes, scores, max_output_size, iou_threshold)
    selected, count = nms_jit(boxes, scores, max_output_size, iou_threshold, tile=tile)
    assert selected.shape == (max_output_size,) and selected.dtype == np.int32
    assert count.dtype == np.int32
    assert int(count) == expected_count
    np.testing.assert_array_equal(np.asarray(selected), expected)
    return expected_count


# ---------------------------------------------------------------- non-maximum suppression


@pytest.mark.parametrize(
    "n, max_output_size, iou_threshold, seed",
    [(50, 10, 0.5, 0), (300, 1000, 0.7, 1), (1000, 100, 0.3, 2), (2000, 300, 0.7, 3), (777, 777, 0.5, 4)],
)
def test_nms_random_boxes_match_tf(n, max_output_size, iou_threshold, seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, n)
    scores = rng.random(n, dtype=np.float32)
    assert assert_nms_matches_tf(boxes, scores, max_output_size, iou_threshold) > 0


def test_nms_rpn_sized_input_matches_tf():
    """The RPN's load: 6000 anchor-like boxes in pixels, 1000 kept at IoU 0.7, scores with many exact ties."""
    rng = np.random.default_rng(10)
    boxes = random_boxes(rng, 6000, scale=1024.0, min_side=0.02, max_side=0.5)
    scores = np.round(rng.random(6000) * 50).astype(np.float32) / 50
    kept = assert_nms_matches_tf(boxes, scores, 1000, 0.7)
    assert kept == 1000  # the early stop at max_output_size is exercised


@pytest.mark.parametrize("tile", [1, 3, 7, 64, 10_000])
def test_nms_tile_size_does_not_change_the_result(tile):
    rng = np.random.default_rng(11)
    boxes = random_boxes(rng, 200, max_side=0.5)
    scores = np.round(rng.random(200) * 5).astype(np.float32)
    assert_nms_matches_tf(boxes, scores, 60, 0.4, tile=tile)


def test_nms_equal_scores_keep_lower_index_first():
    rng = np.random.default_rng(12)
    boxes = random_boxes(rng, 500, max_side=0.4)
    assert_nms_matches_tf(boxes, np.ones(500, np.float32), 200, 0.5)
    # a few score levels with many ties each, including -0.0 next to 0.0 (equal in C++)
    scores = rng.choice(np.array([-1.0, -0.0, 0.0, 0.5, 2.0], np.float32), 500)
    assert_nms_matches_tf(boxes, scores, 200, 0.5)


def test_nms_identical_boxes_keep_only_the_best():
    boxes = np.tile(np.array([[10, 10, 50, 60]], np.float32), (40, 1))
    scores = np.linspace(0.1, 0.9, 40).astype(np.float32)[::-1].copy()
    scores[7] = 5.0
    selected, count = nms_jit(boxes, scores, 10, 0.5)
    assert int(count) == 1 and int(selected[0]) == 7
    assert not np.asarray(selected[1:]).any()  # padding is 0
    assert_nms_matches_tf(boxes, scores, 10, 0.5)
    assert_nms_matches_tf(boxes, np.zeros(40, np.float32), 10, 0.5)  # ties: index 0 wins


def test_nms_chain_of_overlaps_across_tiles():
    """Each box overlaps only its neighbours: greedy keeps every other box, the worst case for in-tile rounds."""
    n = 300
    y = np.arange(n, dtype=np.float32) * 5.0
    boxes = np.stack([y, np.zeros(n), y + 10.0, np.full(n, 10.0)], axis=1).astype(np.float32)
    scores = np.linspace(1.0, 0.0, n, dtype=np.float32)
    for tile in (4, 32, 256):
        kept = assert_nms_matches_tf(boxes, scores, n, 0.3, tile=tile)
        assert kept == n // 2


def test_nms_zero_area_flipped_and_outside_boxes():
    rng = np.random.default_rng(13)
    boxes = random_boxes(rng, 400, max_side=0.6) * 3.0 - 1.0  # partly outside [0, 1], negative coordinates
    boxes[:50, 2] = boxes[:50, 0]  # zero height: never suppresses or is suppressed
    boxes[50:60] = boxes[60:70]  # duplicates
    boxes[70:120] = boxes[70:120][:, [2, 3, 0, 1]]  # corners given the other way round
    boxes[120:130] = 0.0  # points at the origin
    scores = rng.random(400, dtype=np.float32)
    kept = assert_nms_matches_tf(boxes, scores, 400, 0.5)
    assert kept >= 60


def test_nms_threshold_is_strict():
    """IoU exactly equal to the threshold keeps the box (TensorFlow suppresses only when IoU > threshold)."""
    boxes = np.array([[0, 0, 1, 2], [0, 0, 1, 1], [0, 1, 1, 2]], np.float32)  # IoU(0, 1) = IoU(0, 2) = 0.5
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert assert_nms_matches_tf(boxes, scores, 3, 0.5) == 3
    assert assert_nms_matches_tf(boxes, scores, 3, 0.49) == 1


def test_nms_fewer_boxes_than_outputs_and_unscorable_boxes():
    rng = np.random.default_rng(14)
    boxes = random_boxes(rng, 30)
    scores = rng.normal(size=30).astype(np.float32)
    scores[[3, 9]] = -np.inf  # TensorFlow never considers a score that is not > -inf
    scores[5] = np.inf
    selected, count = nms_jit(boxes, scores, 100, 0.5)
    assert int(selected[0]) == 5 and 3 not in np.asarray(selected[: int(count)])
    assert_nms_matches_tf(boxes, scores, 100, 0.5)
    assert_nms_matches_tf(boxes, np.full(30, -np.inf, np.float32), 100, 0.5)  # nothing selectable


def test_nms_all_but_one_suppressed():
    boxes = np.array([[0, 0, 10, 10]] + [[0, 0, 10, 9.9]] * 20, np.float32)
    scores = np.arange(21, 0, -1).astype(np.float32)
    assert assert_nms_matches_tf(boxes, scores, 5, 0.7) == 1


def test_nms_empty_input_gives_padding():
    selected, count = jax_ops.non_max_suppression(
        np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 7, 0.5
    )
    assert selected.shape == (7,) and int(count) == 0 and not np.asarray(selected).any()


def test_nms_compiles_once_per_shape_with_a_traced_threshold():
    traces = []

    def counted(boxes, scores, threshold):
        traces.append(1)
        return jax_ops.non_max_suppression(boxes, scores, 50, threshold)

    fn = jax.jit(counted)
    rng = np.random.default_rng(15)
    for seed, threshold in enumerate((0.3, 0.5, 0.7)):
        boxes = random_boxes(np.random.default_rng(seed), 120)
        scores = rng.random(120, dtype=np.float32)
        selected, count = fn(boxes, scores, np.float32(threshold))
        expected, expected_count = tf_nms(boxes, scores, 50, threshold)
        assert int(count) == expected_count
        np.testing.assert_array_equal(np.asarray(selected), expected)
    assert len(traces) == 1


# ---------------------------------------------------------------- crop and resize


def tf_crop(image, boxes, box_indices, crop_size):
    return tf.image.crop_and_resize(
        image, boxes, box_indices, crop_size, method="bilinear", extrapolation_value=0
    ).numpy()


def assert_crops_match_tf(image, boxes, box_indices, crop_size, compiled=True):
    image = np.asarray(image)
    boxes = np.asarray(boxes, np.float32)
    box_indices = np.asarray(box_indices, np.int32)
    expected = tf_crop(image, boxes, box_indices, crop_size)
    fn = crop_jit if compiled else jax_ops.crop_and_resize
    crops = np.asarray(fn(image, boxes, box_indices, crop_size=tuple(crop_size)))
    assert crops.dtype == np.float32 and crops.shape == expected.shape
    np.testing.assert_array_equal(crops, expected)
    return crops


def adversarial_boxes(rng, k):
    """Normalised boxes inside, across and outside [0, 1], flipped, zero-size, and exactly on the border."""
    boxes = rng.uniform(-0.3, 1.3, (k, 4)).astype(np.float32)
    q = k // 8
    boxes[:q] = np.clip(boxes[:q], 0.0, 1.0)
    boxes[q : 2 * q, 2] = 1.0  # bottom edge exactly on the last row
    boxes[2 * q : 3 * q, 3] = 1.0
    boxes[3 * q : 4 * q, 0] = 0.0
    boxes[4 * q : 5 * q, 1] = 0.0
    boxes[5 * q : 6 * q, 2] = boxes[5 * q : 6 * q, 0]  # zero height
    boxes[6 * q : 7 * q, 3] = 0.0  # x2 = 0 with x1 > 0: flipped, ending on the first column
    return boxes


@pytest.mark.parametrize("crop_size", [(7, 7), (14, 14), (1, 1), (1, 5), (5, 1), (3, 2)])
def test_crop_and_resize_matches_tf_bit_for_bit(crop_size):
    rng = np.random.default_rng(20)
    image = rng.normal(size=(2, 64, 48, 5)).astype(np.float32)
    boxes = adversarial_boxes(rng, 400)
    box_indices = rng.integers(0, 2, 400)
    crops = assert_crops_match_tf(image, boxes, box_indices, crop_size)
    assert (crops == 0).any() and (crops != 0).any()  # both extrapolated and sampled pixels occur


def test_crop_and_resize_roi_align_on_pixel_aligned_boxes():
    """RoIAlign's usage: pixel boxes normalised by the molded image size, clipped at the border, 256x256 map."""
    rng = np.random.default_rng(21)
    feature_map = rng.normal(size=(1, 256, 256, 8)).astype(np.float32)
    pixels = np.sort(rng.integers(0, 1025, (300, 2, 2)), axis=1).reshape(300, 4)[:, [0, 2, 1, 3]]
    boxes = (pixels / np.float32(1024.0)).astype(np.float32)
    boxes[::7, 2:] = 1.0
    assert_crops_match_tf(feature_map, boxes, np.zeros(300), (7, 7))
    assert_crops_match_tf(feature_map, boxes, np.zeros(300), (14, 14))


def test_crop_and_resize_single_row_or_column_images_and_integer_pixels():
    rng = np.random.default_rng(22)
    boxes = adversarial_boxes(rng, 64)
    assert_crops_match_tf(rng.normal(size=(1, 1, 9, 3)).astype(np.float32), boxes, np.zeros(64), (4, 4))
    assert_crops_match_tf(rng.normal(size=(1, 9, 1, 3)).astype(np.float32), boxes, np.zeros(64), (4, 4))
    pixels = rng.integers(0, 256, (3, 20, 30, 3)).astype(np.uint8)
    assert_crops_match_tf(pixels, boxes, rng.integers(0, 3, 64), (6, 5))


def test_crop_and_resize_eager_matches_tf():
    rng = np.random.default_rng(23)
    image = rng.normal(size=(2, 16, 16, 2)).astype(np.float32)
    assert_crops_match_tf(image, adversarial_boxes(rng, 64), rng.integers(0, 2, 64), (7, 7), compiled=False)


def test_crop_and_resize_whole_image_box_reproduces_the_image():
    rng = np.random.default_rng(24)
    image = rng.normal(size=(1, 10, 12, 3)).astype(np.float32)
    crops = assert_crops_match_tf(image, [[0, 0, 1, 1]], [0], (10, 12))
    np.testing.assert_allclose(crops[0], image[0], rtol=0, atol=1e-6)


# ---------------------------------------------------------------- correctly rounded division


@pytest.mark.parametrize("count", [1, 3, 6, 13, 27, 2048])
def test_division_by_a_count_is_correctly_rounded(count):
    rng = np.random.default_rng(30 + count)
    numerator = (rng.uniform(-2000, 2000, 50_000) * rng.choice([1.0, 1e-3, 1e-6], 50_000)).astype(np.float32)
    numerator[:10] = 0.0
    numerator[10:20] = np.float32(count) * np.arange(10, dtype=np.float32)  # exact quotients
    divide = jax.jit(jax_ops._divide_by_count, static_argnums=1)
    np.testing.assert_array_equal(np.asarray(divide(numerator, count)), numerator / np.float32(count))


@pytest.mark.parametrize("ulps", [-2, -1, 1, 2])
def test_an_inexact_backend_quotient_is_corrected(ulps):
    """What XLA's GPU division can return (off by up to 2 ulps) comes back correctly rounded."""
    rng = np.random.default_rng(40)
    numerator = rng.uniform(-500, 500, 50_000).astype(np.float32)
    divisor = np.float32(6)
    exact = numerator / divisor
    off = exact.copy()
    for _ in range(abs(ulps)):
        off = np.nextafter(off, np.float32(np.inf if ulps > 0 else -np.inf))
    fixed = jax.jit(jax_ops._nearest_quotient)(numerator, np.full_like(numerator, divisor), off)
    np.testing.assert_array_equal(np.asarray(fixed), exact)
