"""COCO run-length encoding of one instance's mask from its box alone, never from an image-sized array.

pycocotools encodes a mask column by column (Fortran order) into alternating runs of 0s and 1s, starting with
0s, over the whole H x W image. An instance's pixels all lie in its box, so its runs of 1s are the box's runs
of 1s moved into the image's frame: a run in column c of the box, rows r0..r1, is the run at
``(x1 + c) * H + y1 + r0`` .. ``(x1 + c) * H + y1 + r1`` of the image. Runs that meet across a column
boundary (possible only when the box spans the image's full height) are joined, the gaps between runs are the
0-runs, and pycocotools turns the counts into its compressed string (``frPyObjects``), so the result is
byte-identical to ``pycocotools.mask.encode`` of the full mask (tests/segmentation/test_rle.py checks it).
Work and memory: O(box area).
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_util

__all__ = ["encode_in_box"]


def encode_in_box(box_mask: np.ndarray, x1: int, y1: int, height: int, width: int) -> dict:
    """COCO compressed RLE ``{"size": [height, width], "counts": str}`` of an image whose only set pixels are
    ``box_mask`` (bool [h, w]) placed with its top-left pixel at column ``x1``, row ``y1``.

    Raises ValueError when the placed box does not fit inside the image.
    """
    box_mask = np.asarray(box_mask, dtype=bool)
    h, w = box_mask.shape
    if x1 < 0 or y1 < 0 or x1 + w > width or y1 + h > height:
        raise ValueError(f"a {w}x{h} mask at ({x1}, {y1}) does not fit in a {width}x{height} image")
    # per column of the box (rows of the transpose), where runs of 1s start and end (end exclusive)
    edges = np.zeros((w, h + 2), dtype=np.int8)
    edges[:, 1:-1] = box_mask.T
    step = np.diff(edges, axis=1)
    start_col, start_row = np.nonzero(step == 1)
    end_col, end_row = np.nonzero(step == -1)
    starts = (x1 + start_col.astype(np.int64)) * height + y1 + start_row
    ends = (x1 + end_col.astype(np.int64)) * height + y1 + end_row
    if len(starts):
        joined = ends[:-1] == starts[1:]  # a run ending at a column's last row goes on at the next's first
        starts, ends = starts[np.r_[True, ~joined]], ends[np.r_[~joined, True]]
    bounds = np.concatenate([[0], np.stack([starts, ends], axis=1).ravel(), [height * width]])
    counts = np.diff(bounds)
    if len(counts) > 1 and counts[-1] == 0:
        counts = counts[:-1]  # the mask ends on a 1: pycocotools writes no empty last run
    rle = mask_util.frPyObjects({"size": [height, width], "counts": counts.tolist()}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
