"""Engine detections with chosen masks, for the unit tests of result and overlay.

``BoxedMasks`` has the interface ``SegmentationResult.from_detections`` reads from ``backend.mrcnn``'s
``Detections`` (boxes (x1, y1, x2, y2), class_ids, scores, image_size, box_mask(i)), but its masks are any
full-image masks, cut to their boxes, where the engine's come from 28 x 28 probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BoxedMasks:
    boxes: np.ndarray  # int [N, 4] (x1, y1, x2, y2)
    class_ids: np.ndarray
    scores: np.ndarray
    full_masks: np.ndarray  # bool [H, W, N]; pixels outside a box are ignored, as the engine has none there

    @property
    def image_size(self):
        return self.full_masks.shape[:2]

    def box_mask(self, i):
        x1, y1, x2, y2 = (int(v) for v in self.boxes[i])
        return self.full_masks[y1:y2, x1:x2, i]


def boxed_masks(boxes, class_ids, scores, full_masks) -> BoxedMasks:
    return BoxedMasks(
        np.asarray(boxes, np.int32).reshape(-1, 4),
        np.asarray(class_ids, np.int32),
        np.asarray(scores, np.float32),
        np.asarray(full_masks, bool),
    )
