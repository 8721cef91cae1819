"""TensorFlow implementation of the detection kernels (see ``backend.mrcnn.kernels`` for the contract)."""

from __future__ import annotations

import tensorflow as tf


def non_max_suppression(boxes, scores, max_output_size: int, iou_threshold: float):
    """Greedy NMS by ``tf.image.non_max_suppression_padded`` semantics: static [max_output_size] output."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    selected = tf.image.non_max_suppression(boxes, scores, max_output_size, iou_threshold=iou_threshold)
    num_valid = tf.shape(selected)[0]
    padded = tf.pad(selected, [[0, max_output_size - num_valid]])
    padded = tf.ensure_shape(tf.cast(padded, tf.int32), [max_output_size])
    return padded, tf.cast(num_valid, tf.int32)


def crop_and_resize(image, boxes, box_indices, crop_size):
    """``tf.image.crop_and_resize`` with bilinear sampling and zero extrapolation."""
    return tf.image.crop_and_resize(
        tf.convert_to_tensor(image, tf.float32),
        tf.convert_to_tensor(boxes, tf.float32),
        tf.cast(box_indices, tf.int32),
        crop_size,
        method="bilinear",
        extrapolation_value=0,
    )
