"""Pyramid RoIAlign: a fixed-size feature crop per box, from the pyramid level that suits its size.

A box of h x w pixels of a molded image of area S is read from level
``k = clip(4 + round(log2(sqrt(h * w) / (224 / sqrt(S)))), 2, 5)`` (round half to even, as tf.round), by
bilinear crop-and-resize (see ``kernels.crop_and_resize``). Boxes are normalised (y1, x1, y2, x2); the molded
image size comes from the first image's meta, as in matterport. To keep shapes static every box is cropped
from each of P2..P5 and the crop of its own level kept.
"""

from __future__ import annotations

import math

from keras import layers, ops

from backend.mrcnn import kernels


class PyramidRoIAlign(layers.Layer):
    """[boxes [B, N, 4], image_meta [B, M], P2, P3, P4, P5] -> crops [B, N, pool, pool, C]."""

    def __init__(self, pool_size: int, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, boxes, image_meta, feature_maps):
        batch, count = boxes.shape[0], boxes.shape[1]
        y1, x1, y2, x2 = (boxes[..., i] for i in range(4))
        molded_hw = image_meta[0, 4:6]
        area = molded_hw[0] * molded_hw[1]
        scale = ops.sqrt((y2 - y1) * (x2 - x1)) / (224.0 / ops.sqrt(area))
        level = ops.log(scale) / math.log(2.0)
        level = ops.clip(4.0 + ops.round(level), 2.0, 5.0)  # -inf (empty box) -> 2, as matterport's int cast
        flat_boxes = ops.reshape(boxes, (batch * count, 4))
        flat_level = ops.reshape(level, (batch * count,))
        box_indices = ops.repeat(ops.arange(batch, dtype="int32"), count)
        size = (self.pool_size, self.pool_size)
        pooled = None
        for k, feature_map in zip(range(2, 6), feature_maps, strict=True):
            crops = kernels.crop_and_resize(feature_map, flat_boxes, box_indices, size)
            on_level = ops.reshape(flat_level == float(k), (-1, 1, 1, 1))
            pooled = (
                crops * ops.cast(on_level, crops.dtype)
                if pooled is None
                else ops.where(on_level, crops, pooled)
            )
        channels = feature_maps[0].shape[-1]
        return ops.reshape(pooled, (batch, count, self.pool_size, self.pool_size, channels))
