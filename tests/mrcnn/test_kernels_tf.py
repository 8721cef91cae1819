"""TensorFlow detection kernels: static shapes, tf.image semantics, dispatch by backend."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from backend.mrcnn import kernels  # noqa: E402


def random_boxes(rng, n):
    yx = rng.uniform(0, 0.8, size=(n, 2))
    hw = rng.uniform(0.01, 0.3, size=(n, 2))
    return np.concatenate([yx, yx + hw], axis=1).astype(np.float32)


@pytest.mark.parametrize("threshold", [0.3, 0.7])
def test_nms_matches_tf_image_and_pads_with_zeros(threshold):
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 300)
    scores = rng.uniform(size=300).astype(np.float32)
    scores[10:20] = scores[5]  # ties: lower index first
    selected, count = kernels.non_max_suppression(boxes, scores, 299, threshold)
    expected = tf.image.non_max_suppression(boxes, scores, 299, iou_threshold=threshold).numpy()
    assert selected.shape == (299,) and selected.dtype == tf.int32
    assert int(count) == len(expected) < 299
    np.testing.assert_array_equal(selected.numpy()[: int(count)], expected)
    assert not selected.numpy()[int(count) :].any()


def test_nms_static_shape_inside_a_graph():
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.float32)])
    def run(boxes, scores):
        return kernels.non_max_suppression(boxes, scores, 7, 0.5)

    selected, _ = run(random_boxes(np.random.default_rng(1), 20), np.ones(20, np.float32))
    assert run.get_concrete_function().structured_outputs[0].shape == (7,)
    assert selected.shape == (7,)


def test_crop_and_resize_is_bilinear_with_zero_outside():
    image = np.arange(2 * 5 * 6 * 3, dtype=np.float32).reshape(2, 5, 6, 3)
    boxes = np.array([[0, 0, 1, 1], [0.3, 0.3, 0.8, 0.9], [-0.5, -0.5, 0.5, 0.5]], np.float32)
    crops = kernels.crop_and_resize(image, boxes, np.array([0, 1, 0], np.int32), (5, 6)).numpy()
    assert crops.shape == (3, 5, 6, 3)
    np.testing.assert_allclose(crops[0], image[0])  # the whole image at its own size
    assert (crops[2, 0] == 0).all() and (crops[2, :, 0] == 0).all()  # samples above/left of the image
    y, x = 0.3 * 4, 0.3 * 5  # the first sample of box 1 lies between pixels: the bilinear mix of four
    y0, x0, fy, fx = int(y), int(x), y % 1, x % 1
    top = image[1, y0, x0] * (1 - fx) + image[1, y0, x0 + 1] * fx
    bottom = image[1, y0 + 1, x0] * (1 - fx) + image[1, y0 + 1, x0 + 1] * fx
    np.testing.assert_allclose(crops[1, 0, 0], top * (1 - fy) + bottom * fy, rtol=1e-5)


def test_unsupported_backend_is_named(monkeypatch):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(RuntimeError, match="torch"):
        kernels.non_max_suppression(np.zeros((1, 4), np.float32), np.zeros(1, np.float32), 1, 0.5)
