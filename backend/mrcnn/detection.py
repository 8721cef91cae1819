"""Detection layer: final boxes, classes and scores from the classifier head, as matterport's.

Per region: the most probable class and its probability; the box refined by that class's deltas (times
BBOX_STD_DEV) and clipped to the image window. Regions of class 0 (background) or scoring below
DETECTION_MIN_CONFIDENCE drop out; greedy NMS at DETECTION_NMS_THRESHOLD runs per class; the best
DETECTION_MAX_INSTANCES by score remain (ties: lower region index first).

matterport does the per-class NMS on dynamically gathered subsets; here each class runs NMS over all regions
with the others scored below every candidate (they are visited last, so they can neither suppress a candidate
nor take its place), which keeps shapes static and selects exactly the same boxes.

Output: [B, DETECTION_MAX_INSTANCES, 6] rows (y1, x1, y2, x2 normalised, class_id, score), sorted by score,
all-zero rows after the last detection.
"""

from __future__ import annotations

import numpy as np
from keras import layers, ops

from backend.mrcnn import kernels
from backend.mrcnn.boxes import apply_box_deltas, clip_boxes


def normalized_window(image_meta):
    """The image window [B, 4] from image_meta, normalised to the molded image (matterport's norm_boxes)."""
    h, w = image_meta[0, 4], image_meta[0, 5]
    window = image_meta[:, 7:11]
    scale = ops.stack([h - 1.0, w - 1.0, h - 1.0, w - 1.0])
    shift = ops.array([0.0, 0.0, 1.0, 1.0], dtype=window.dtype)
    return (window - shift) / scale


class DetectionLayer(layers.Layer):
    """[rois [B, R, 4], mrcnn_class [B, R, K], mrcnn_bbox [B, R, K, 4], image_meta [B, M]] -> [B, D, 6]."""

    def __init__(self, num_classes, max_instances, min_confidence, nms_threshold, bbox_std_dev, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.max_instances = int(max_instances)
        self.min_confidence = float(min_confidence or 0.0)
        self.nms_threshold = float(nms_threshold)
        self.bbox_std_dev = np.asarray(bbox_std_dev, dtype=np.float32)

    def call(self, rois, probs, deltas, image_meta):
        windows = normalized_window(image_meta)
        return ops.stack(
            [self._one_image(rois[b], probs[b], deltas[b], windows[b]) for b in range(rois.shape[0])]
        )

    def _one_image(self, rois, probs, deltas, window):
        count = rois.shape[0]
        class_ids = ops.cast(ops.argmax(probs, axis=1), "int32")
        scores = ops.take_along_axis(probs, class_ids[:, None], axis=1)[:, 0]
        class_deltas = ops.take_along_axis(deltas, class_ids[:, None, None], axis=1)[:, 0]
        boxes = clip_boxes(apply_box_deltas(rois, class_deltas * self.bbox_std_dev), window)

        candidate = class_ids > 0
        if self.min_confidence:
            candidate = ops.logical_and(candidate, scores >= self.min_confidence)
        kept = ops.zeros((count,), dtype="bool")
        positions = ops.arange(self.max_instances)
        for class_id in range(1, self.num_classes):
            of_class = ops.logical_and(candidate, class_ids == class_id)
            selected, num_valid = kernels.non_max_suppression(
                boxes, ops.where(of_class, scores, -1.0), self.max_instances, self.nms_threshold
            )
            real = ops.logical_and(positions < num_valid, ops.take(of_class, selected))
            hits = ops.max(ops.one_hot(selected, count) * ops.cast(real, "float32")[:, None], axis=0)
            kept = ops.logical_or(kept, hits > 0)

        k = min(self.max_instances, count)
        top_scores, order = ops.top_k(ops.where(kept, scores, -1.0), k, sorted=True)
        is_detection = ops.cast(ops.take(kept, order), "float32")[:, None]
        rows = ops.concatenate(
            [
                ops.take(boxes, order, axis=0),
                ops.cast(ops.take(class_ids, order), "float32")[:, None],
                ops.take(scores, order)[:, None],
            ],
            axis=1,
        )
        rows = rows * is_detection
        if k < self.max_instances:
            rows = ops.pad(rows, [[0, self.max_instances - k], [0, 0]])
        return rows
