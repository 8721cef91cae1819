"""Detection kernels: greedy non-maximum suppression and bilinear crop-and-resize.

These two operations are the only ones in the model that are not plain ``keras.ops``. Each backend has its own
implementation (``tf_ops`` with ``tf.image``; ``jax_ops`` with static-shape gathers for XLA); the one used is
chosen by ``keras.backend.backend()`` at call time and imported lazily, so importing this package loads neither
TensorFlow nor JAX.

Contract (both implementations must agree with ``tf.image`` to float rounding):

``non_max_suppression(boxes, scores, max_output_size, iou_threshold) -> (selected, num_valid)``
    boxes float32 [N, 4] as (y1, x1, y2, x2) (any consistent units; corners may come in either order, as
    ``tf.image.non_max_suppression`` accepts); scores float32 [N]. Greedy NMS exactly as
    ``tf.image.non_max_suppression``: visit boxes by descending score (ties: lower index first), keep a box
    unless its IoU with an already kept box is > iou_threshold. ``selected`` int32 [max_output_size]: indices of
    the kept boxes in keep order, positions >= num_valid hold 0. ``num_valid`` int32 scalar. Static shapes.

``crop_and_resize(image, boxes, box_indices, crop_size) -> crops``
    image float32 [B, H, W, C]; boxes float32 [K, 4] normalised (y1, x1, y2, x2) (1.0 = last pixel row/column
    as ``tf.image.crop_and_resize`` defines it); box_indices int32 [K] (which batch item each box samples);
    crop_size (h, w) python ints. Returns float32 [K, h, w, C], identical to
    ``tf.image.crop_and_resize(image, boxes, box_indices, crop_size, method="bilinear",
    extrapolation_value=0)``: samples outside the image are 0.
"""

from __future__ import annotations

import importlib

import keras

__all__ = ["non_max_suppression", "crop_and_resize", "backend_ops"]

_MODULES = {"tensorflow": "backend.mrcnn.kernels.tf_ops", "jax": "backend.mrcnn.kernels.jax_ops"}


def backend_ops():
    """The kernel module for the active Keras backend; raises RuntimeError for a backend we do not support."""
    name = keras.backend.backend()
    if name not in _MODULES:
        raise RuntimeError(
            f"Keras backend {name!r} has no Mask R-CNN kernels; use one of {sorted(_MODULES)} "
            "(set KERAS_BACKEND)."
        )
    return importlib.import_module(_MODULES[name])


def non_max_suppression(boxes, scores, max_output_size: int, iou_threshold: float):
    """Greedy NMS; see the module docstring for shapes and semantics."""
    return backend_ops().non_max_suppression(boxes, scores, int(max_output_size), float(iou_threshold))


def crop_and_resize(image, boxes, box_indices, crop_size):
    """Bilinear crop-and-resize; see the module docstring for shapes and semantics."""
    h, w = crop_size
    return backend_ops().crop_and_resize(image, boxes, box_indices, (int(h), int(w)))
