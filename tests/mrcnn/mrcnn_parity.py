"""Order-insensitive comparison of our model's outputs with matterport's reference (see parity README).

The reference is deterministic but not stable under tiny arithmetic changes: near-tied proposals and
detections swap places, so rows are matched by IoU (and class), never by index.
"""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

MIN_CONFIDENCE_MARGIN = 1e-4  # MANIFEST: "num_rois_score_within_1e-4_of_min_confidence"


def iou_matrix(a, b) -> np.ndarray:
    """IoU [len(a), len(b)] of (y1, x1, y2, x2) boxes; empty boxes have IoU 0 with everything."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    y1 = np.maximum(a[:, None, 0], b[None, :, 0])
    x1 = np.maximum(a[:, None, 1], b[None, :, 1])
    y2 = np.minimum(a[:, None, 2], b[None, :, 2])
    x2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(y2 - y1, 0, None) * np.clip(x2 - x1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _greedy_pairs(cost) -> dict[int, int]:
    """One-to-one pairs by increasing cost, ignoring infinite costs: {row: column}."""
    pairs, used = {}, set()
    for flat in np.argsort(cost, axis=None, kind="stable"):
        i, j = (int(v) for v in np.unravel_index(flat, cost.shape))
        if not np.isfinite(cost[i, j]):
            break
        if i in pairs or j in used:
            continue
        pairs[i] = j
        used.add(j)
    return pairs


def box_distance(ref_boxes, our_boxes) -> np.ndarray:
    """Largest corner difference [len(ref), len(ours)]; works for empty boxes, which IoU cannot match."""
    ref_boxes, our_boxes = np.asarray(ref_boxes, np.float64), np.asarray(our_boxes, np.float64)
    return np.abs(ref_boxes[:, None, :] - our_boxes[None, :, :]).max(axis=-1)


def match_boxes(ref_boxes, our_boxes, box_tol) -> dict[int, int]:
    """Pairs of boxes whose corners differ by at most ``box_tol``, closest first: {ref row: our row}."""
    distance = box_distance(ref_boxes, our_boxes)
    return _greedy_pairs(np.where(distance <= box_tol, distance, np.inf))


def match_detections(
    ref_boxes, our_boxes, ref_scores, our_scores, box_tol, score_tol, ref_classes, our_classes
):
    """Pairs of detections of the same class whose box corners differ by at most ``box_tol`` and scores by
    at most ``score_tol``, closest first: {ref row: our row}."""
    box_diff = box_distance(ref_boxes, our_boxes)
    score_diff = np.abs(
        np.asarray(ref_scores, np.float64)[:, None] - np.asarray(our_scores, np.float64)[None, :]
    )
    same_class = np.asarray(ref_classes)[:, None] == np.asarray(our_classes)[None, :]
    ok = same_class & (box_diff <= box_tol) & (score_diff <= score_tol)
    return _greedy_pairs(np.where(ok, box_diff / box_tol + score_diff / score_tol, np.inf))


def diagnostics(parity_dir, case):
    manifest = json.loads((parity_dir / "MANIFEST.json").read_text())
    return manifest["cases"][case]["per_image"]


def touches_border(boxes, eps=1e-6) -> np.ndarray:
    """Normalised boxes with an edge on the unit square's border: RoIAlign samples there are fragile."""
    boxes = np.asarray(boxes)
    return ((boxes <= eps) | (boxes >= 1 - eps)).any(axis=-1)


def compare_results(ours, ref, image_diagnostics, min_confidence):
    """Problems (list of str) between one image's detect() result and the reference result.

    Allowed: detections whose reference score is within 1e-4 of DETECTION_MIN_CONFIDENCE may appear on one
    side only (MANIFEST counts them; a 1e-5 change moves them across the threshold).
    """
    problems = []
    pairs = match_detections(
        ref["rois"], ours["rois"], ref["scores"], ours["scores"], 1, 1e-3, ref["class_ids"], ours["class_ids"]
    )
    fragile_budget = image_diagnostics["num_rois_score_within_1e-4_of_min_confidence"]
    for i in set(range(len(ref["rois"]))) - set(pairs):
        if abs(ref["scores"][i] - min_confidence) < MIN_CONFIDENCE_MARGIN and fragile_budget > 0:
            fragile_budget -= 1
            continue
        problems.append(
            f"reference detection {i} (class {ref['class_ids'][i]}, box {ref['rois'][i]}) unmatched"
        )
    for j in set(range(len(ours["rois"]))) - set(pairs.values()):
        if abs(ours["scores"][j] - min_confidence) < MIN_CONFIDENCE_MARGIN and fragile_budget > 0:
            fragile_budget -= 1
            continue
        problems.append(f"our detection {j} (class {ours['class_ids'][j]}, box {ours['rois'][j]}) unmatched")
    for i, j in pairs.items():
        # matched detections already agree in class, box (1 px) and score (1e-3)
        a, b = ours["masks"][..., j], ref["masks"][..., i]
        union = np.logical_or(a, b).sum()
        iou = np.logical_and(a, b).sum() / union if union else 1.0
        if iou < 0.98:
            problems.append(f"detection {i}: mask IoU {iou:.4f} < 0.98")
    return problems


def reference_result(ref, b):
    shape = ref[f"result{b}_masks_shape"]
    masks = np.unpackbits(ref[f"result{b}_masks_packbits"], axis=-1, count=int(shape[2])).astype(bool)
    return {
        "rois": ref[f"result{b}_rois"],
        "class_ids": ref[f"result{b}_class_ids"],
        "scores": ref[f"result{b}_scores"],
        "masks": masks.reshape(tuple(int(s) for s in shape)),
    }


def config_from(parity_dir, name):
    from backend.mrcnn.config import Config

    return Config.from_dict(json.loads((parity_dir / f"config_{name}.json").read_text())["values"])


def load_input(parity_dir, name) -> np.ndarray:
    with Image.open(parity_dir / "inputs" / f"{name}.png") as image:
        return np.asarray(image.convert("RGB"))
