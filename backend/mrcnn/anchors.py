"""Anchor boxes for the RPN: one set per pyramid level P2..P6, as matterport generates them.

Each level has one scale (``RPN_ANCHOR_SCALES[i]``, pixels) and every ratio in ``RPN_ANCHOR_RATIOS``
(width / height); anchors are centred on every ``RPN_ANCHOR_STRIDE``-th cell of the level's feature map, whose
cells are ``BACKBONE_STRIDES[i]`` pixels apart. Order: level, then row, then column, then ratio, which is the
order in which the RPN head's reshaped outputs list them.
"""

from __future__ import annotations

import math

import numpy as np


def backbone_shapes(image_shape, strides) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level's feature map for a molded image of ``image_shape``."""
    return [(math.ceil(image_shape[0] / s), math.ceil(image_shape[1] / s)) for s in strides]


def level_anchors(scale, ratios, shape, feature_stride, anchor_stride) -> np.ndarray:
    """Pixel anchors [N, 4] (y1, x1, y2, x2) of one level, float64."""
    ratios = np.asarray(ratios, dtype=np.float64)
    heights = scale / np.sqrt(ratios)
    widths = scale * np.sqrt(ratios)
    centers_y = np.arange(0, shape[0], anchor_stride) * feature_stride
    centers_x = np.arange(0, shape[1], anchor_stride) * feature_stride
    cx, cy = np.meshgrid(centers_x, centers_y)
    # [positions, ratios] grids: position-major, ratio-minor
    box_w, box_cx = np.meshgrid(widths, cx.ravel())
    box_h, box_cy = np.meshgrid(heights, cy.ravel())
    centers = np.stack([box_cy, box_cx], axis=2).reshape(-1, 2)
    sizes = np.stack([box_h, box_w], axis=2).reshape(-1, 2)
    return np.concatenate([centers - 0.5 * sizes, centers + 0.5 * sizes], axis=1)


def normalize_boxes(boxes, image_hw) -> np.ndarray:
    """Pixel boxes (y2, x2 exclusive) -> normalised boxes where 1.0 is the last pixel row/column."""
    h, w = image_hw
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float64)
    shift = np.array([0, 0, 1, 1], dtype=np.float64)
    return (np.asarray(boxes, dtype=np.float64) - shift) / scale


def denormalize_boxes(boxes, image_hw) -> np.ndarray:
    """Normalised boxes -> integer pixel boxes (y2, x2 exclusive), rounded half to even as numpy does."""
    h, w = image_hw
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float64)
    shift = np.array([0, 0, 1, 1], dtype=np.float64)
    return np.around(np.asarray(boxes, dtype=np.float64) * scale + shift).astype(np.int32)


def pyramid_anchors(config, image_shape) -> np.ndarray:
    """Normalised anchors [N, 4] float32 for a molded image of ``image_shape`` (H, W[, C])."""
    shapes = backbone_shapes(image_shape, config.BACKBONE_STRIDES)
    per_level = [
        level_anchors(scale, config.RPN_ANCHOR_RATIOS, shape, stride, config.RPN_ANCHOR_STRIDE)
        for scale, shape, stride in zip(
            config.RPN_ANCHOR_SCALES, shapes, config.BACKBONE_STRIDES, strict=True
        )
    ]
    return normalize_boxes(np.concatenate(per_level, axis=0), image_shape[:2]).astype(np.float32)
