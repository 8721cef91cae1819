"""The static-shape detection layer selects exactly what matterport's dynamic per-class NMS selects."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from backend.mrcnn.detection import DetectionLayer  # noqa: E402

STD = np.array([0.1, 0.1, 0.2, 0.2], np.float32)


def greedy_nms(boxes, scores, limit, threshold):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        if len(kept) == limit:
            break
        y1 = np.maximum(boxes[i, 0], boxes[kept, 0])
        x1 = np.maximum(boxes[i, 1], boxes[kept, 1])
        y2 = np.minimum(boxes[i, 2], boxes[kept, 2])
        x2 = np.minimum(boxes[i, 3], boxes[kept, 3])
        inter = np.clip(y2 - y1, 0, None) * np.clip(x2 - x1, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        iou = inter / (area(boxes[i]) + area(boxes[kept]) - inter)
        if not (iou > threshold).any():
            kept.append(i)
    return kept


def matterport_detections(rois, probs, deltas, window, max_instances, min_confidence, nms_threshold):
    """matterport's refine_detections_graph, written out in numpy with dynamic shapes."""
    class_ids = probs.argmax(axis=1)
    scores = probs[np.arange(len(probs)), class_ids]
    d = deltas[np.arange(len(probs)), class_ids] * STD
    h, w = rois[:, 2] - rois[:, 0], rois[:, 3] - rois[:, 1]
    cy, cx = rois[:, 0] + 0.5 * h + d[:, 0] * h, rois[:, 1] + 0.5 * w + d[:, 1] * w
    h, w = h * np.exp(d[:, 2]), w * np.exp(d[:, 3])
    boxes = np.stack([cy - 0.5 * h, cx - 0.5 * w, cy - 0.5 * h + h, cx - 0.5 * w + w], axis=1)
    boxes = np.clip(boxes, window[[0, 1, 0, 1]], window[[2, 3, 2, 3]])
    keep = np.flatnonzero((class_ids > 0) & (scores >= min_confidence))
    nms_keep = []
    for c in np.unique(class_ids[keep]):
        ixs = keep[class_ids[keep] == c]
        nms_keep.extend(ixs[greedy_nms(boxes[ixs], scores[ixs], max_instances, nms_threshold)])
    keep = np.array(sorted(nms_keep), dtype=int)
    order = keep[sorted(range(len(keep)), key=lambda k: (-scores[keep[k]], k))][:max_instances]
    rows = np.zeros((max_instances, 6), np.float32)
    rows[: len(order)] = np.concatenate([boxes[order], class_ids[order, None], scores[order, None]], axis=1)
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detection_layer_matches_dynamic_per_class_nms(seed):
    rng = np.random.default_rng(seed)
    rois_n, classes, max_instances = 300, 6, 20
    yx = rng.uniform(0, 0.7, (rois_n, 2))
    rois = np.concatenate([yx, yx + rng.uniform(0.05, 0.3, (rois_n, 2))], axis=1).astype(np.float32)
    rois[::7] = rois[1::7][: len(rois[::7])] + 0.01  # near-duplicates so NMS has work to do
    logits = rng.normal(0, 2.5, (rois_n, classes))
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    probs[50:60] = probs[40:50]  # exact score ties across regions
    deltas = rng.normal(0, 1, (rois_n, classes, 4)).astype(np.float32)
    meta = np.zeros((1, 12 + classes), np.float32)
    meta[0, 4:7] = (128, 128, 3)
    meta[0, 7:11] = (10, 0, 118, 128)
    window = (meta[0, 7:11] - [0, 0, 1, 1]) / 127

    layer = DetectionLayer(classes, max_instances, 0.5, 0.3, STD)
    ours = np.asarray(layer(rois[None], probs[None], deltas[None], meta))[0]
    expected = matterport_detections(rois, probs, deltas, window.astype(np.float32), max_instances, 0.5, 0.3)
    assert (expected[:, 4] > 0).sum() > 5  # the case exercises several classes
    candidates = ((probs.argmax(1) > 0) & (probs.max(1) >= 0.5)).sum()
    assert candidates > (expected[:, 4] > 0).sum()  # ... and suppression or the instance cap
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_fewer_regions_than_detection_slots_are_padded():
    rois = np.array([[[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.3, 0.3]]], np.float32)
    probs = np.array([[[0.05, 0.95], [0.9, 0.1]]], np.float32)
    meta = np.zeros((1, 14), np.float32)
    meta[0, 4:11] = (64, 64, 3, 0, 0, 64, 64)
    out = np.asarray(
        DetectionLayer(2, 5, 0.7, 0.3, STD)(rois, probs, np.zeros((1, 2, 2, 4), np.float32), meta)
    )
    assert out.shape == (1, 5, 6)
    assert out[0, 0, 4:].tolist() == [1.0, pytest.approx(0.95)] and not out[0, 1:].any()
