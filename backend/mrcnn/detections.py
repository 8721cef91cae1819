"""``Detections``: what the engine found in one image, the typed structure it hands to the rest of the app.

Stated once, here:
- ``boxes`` int32 [N, 4] as (x1, y1, x2, y2) in the original image's pixels: (x1, y1) is the first column and
  row inside the box, (x2, y2) one past the last (exclusive), 0 <= x1 < x2 <= width, 0 <= y1 < y2 <= height.
  The same order as the result JSON and torchvision; the graph's (y1, x1, y2, x2) normalised boxes never leave
  the engine.
- ``class_ids`` int32 [N] (1 .. NUM_CLASSES - 1), ``scores`` float32 [N]; rows sorted by score, highest first.
- ``masks`` float32 [N, mh, mw] (MASK_SHAPE, 28 x 28): the mask head's probability for the detected class,
  spread over the box. ``box_mask(i)`` turns one into bool [y2 - y1, x2 - x1] at the box's resolution (bilinear,
  threshold 0.5, as matterport's ``unmold_mask``), so nothing image-sized exists per instance.
- ``image_size`` (height, width).

``to_matterport()`` gives matterport's ``detect()`` dict (rois as (y1, x1, y2, x2), full-image masks [H, W, N])
for callers who want that contract; it costs H x W x N bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.mrcnn.anchors import denormalize_boxes, normalize_boxes
from backend.mrcnn.imaging import linear_weights

MASK_THRESHOLD = 0.5
FLOAT32_HALF_FROM = 0.5 - 2.0**-26  # the smallest float64 that rounds to float32 0.5
ROWS_PER_BLOCK = 256  # columns of a box mask resized at once: bounds the float64 scratch to 2 KiB per row


def box_resolution_mask(probabilities, height: int, width: int) -> np.ndarray:
    """A small probability mask [mh, mw] resized to bool [height, width] at threshold 0.5, column-major.

    The bilinear resize of ``imaging.resize_bilinear`` (scikit-image's, as matterport unmolds masks), done as
    two 1-D passes — rows first on the small mask, then columns, ROWS_PER_BLOCK columns at a time, each block a
    contiguous part of the column-major result — so a large box needs no image-sized float arrays: 2
    multiply-adds per pixel and a few MB of scratch.
    """
    small = np.asarray(probabilities, dtype=np.float64)
    y_lo, wy_lo, y_hi, wy_hi = linear_weights(small.shape[0], height)
    # [mw, height]: each small column resampled to the box's rows
    rows = (small[y_lo] * wy_lo[:, None] + small[y_hi] * wy_hi[:, None]).T.copy()
    x_lo, wx_lo, x_hi, wx_hi = linear_weights(small.shape[1], width)
    # x.astype(float32) >= 0.5 <=> x >= 0.5 - 2**-26 (float64 values from there round to float32 0.5, ties to
    # even), which spares converting every pixel
    out = np.empty((height, width), dtype=bool, order="F")
    columns_first = out.T  # [width, height], C-contiguous
    for left in range(0, width, ROWS_PER_BLOCK):
        cols = slice(left, min(left + ROWS_PER_BLOCK, width))
        block = rows[x_lo[cols]] * wx_lo[cols, None]
        block += rows[x_hi[cols]] * wx_hi[cols, None]
        np.greater_equal(block, FLOAT32_HALF_FROM, out=columns_first[cols])
    return out


@dataclass(frozen=True, eq=False)
class Detections:
    """Detected objects of one image; see the module docstring for shapes, units and box order."""

    boxes: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray
    masks: np.ndarray
    image_size: tuple[int, int]

    def __post_init__(self):
        n = len(self.class_ids)
        if (
            self.boxes.shape != (n, 4)
            or self.scores.shape != (n,)
            or self.masks.ndim != 3
            or len(self.masks) != n
        ):
            raise ValueError(
                f"detections disagree in count: boxes {self.boxes.shape}, class_ids ({n},), "
                f"scores {self.scores.shape}, masks {self.masks.shape}"
            )

    def __len__(self) -> int:
        return len(self.class_ids)

    @classmethod
    def from_graph(cls, rows, masks, original_shape, molded_shape, window) -> Detections:
        """From the network's detection rows [D, 6] (normalised y1, x1, y2, x2, class_id, score; zero rows
        after the last detection) and the class masks [>= n, mh, mw] of its first rows. ``window`` (y1, x1, y2,
        x2) is the image's place in the molded image. Boxes that come out empty are dropped, as matterport does.
        """
        rows = np.asarray(rows)
        zero = np.flatnonzero(rows[:, 4] == 0)
        n = int(zero[0]) if zero.size else len(rows)
        wy1, wx1, wy2, wx2 = normalize_boxes(np.asarray(window, dtype=np.float64), molded_shape[:2])
        shift = np.array([wy1, wx1, wy1, wx1])
        scale = np.array([wy2 - wy1, wx2 - wx1, wy2 - wy1, wx2 - wx1])
        yxyx = denormalize_boxes((rows[:n, :4] - shift) / scale, original_shape[:2])
        nonempty = (yxyx[:, 2] > yxyx[:, 0]) & (yxyx[:, 3] > yxyx[:, 1])
        return cls(
            boxes=np.ascontiguousarray(yxyx[nonempty][:, [1, 0, 3, 2]], dtype=np.int32),
            class_ids=rows[:n, 4][nonempty].astype(np.int32),
            scores=rows[:n, 5][nonempty].astype(np.float32),
            masks=np.asarray(masks[:n], dtype=np.float32)[nonempty],
            image_size=(int(original_shape[0]), int(original_shape[1])),
        )

    def box_mask(self, i: int) -> np.ndarray:
        """Instance ``i``'s mask as bool [y2 - y1, x2 - x1] over its box (clipped to the image)."""
        x1, y1, x2, y2 = (int(v) for v in self.boxes[i])
        mask = box_resolution_mask(self.masks[i], y2 - y1, x2 - x1)
        height, width = self.image_size
        return mask[max(0, -y1) : height - y1, max(0, -x1) : width - x1]

    def full_mask(self, i: int) -> np.ndarray:
        """Instance ``i``'s mask as bool [H, W]."""
        full = np.zeros(self.image_size, dtype=bool)
        x1, y1, x2, y2 = (int(v) for v in self.boxes[i])
        box = self.box_mask(i)
        full[max(y1, 0) : max(y1, 0) + box.shape[0], max(x1, 0) : max(x1, 0) + box.shape[1]] = box
        return full

    def to_matterport(self) -> dict[str, np.ndarray]:
        """matterport's result dict: rois int32 [N, 4] (y1, x1, y2, x2), class_ids int32 [N], scores float32
        [N], masks bool [H, W, N]."""
        masks = np.zeros((*self.image_size, len(self)), dtype=bool)
        for i in range(len(self)):
            masks[..., i] = self.full_mask(i)
        return {
            "rois": np.ascontiguousarray(self.boxes[:, [1, 0, 3, 2]], dtype=np.int32),
            "class_ids": self.class_ids.copy(),
            "scores": self.scores.copy(),
            "masks": masks,
        }
