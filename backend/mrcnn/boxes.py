"""Box arithmetic shared by the proposal and detection layers (keras.ops, any backend).

Boxes are (y1, x1, y2, x2) along the last axis; deltas are (dy, dx, log dh, log dw) relative to the box's
centre and size, already multiplied by their standard deviations. The operation order follows matterport's
so that float32 results agree bit for bit.
"""

from __future__ import annotations

from keras import ops


def apply_box_deltas(boxes, deltas):
    """Refined boxes [..., 4] from boxes [..., 4] and deltas [..., 4]."""
    height = boxes[..., 2] - boxes[..., 0]
    width = boxes[..., 3] - boxes[..., 1]
    center_y = boxes[..., 0] + 0.5 * height
    center_x = boxes[..., 1] + 0.5 * width
    center_y = center_y + deltas[..., 0] * height
    center_x = center_x + deltas[..., 1] * width
    height = height * ops.exp(deltas[..., 2])
    width = width * ops.exp(deltas[..., 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return ops.stack([y1, x1, y1 + height, x1 + width], axis=-1)


def clip_boxes(boxes, window):
    """Clip boxes [..., 4] to ``window`` (y1, x1, y2, x2), broadcastable to boxes."""
    wy1, wx1, wy2, wx2 = (window[..., i : i + 1] for i in range(4))
    lo = ops.concatenate([wy1, wx1, wy1, wx1], axis=-1)
    hi = ops.concatenate([wy2, wx2, wy2, wx2], axis=-1)
    return ops.maximum(ops.minimum(boxes, hi), lo)
