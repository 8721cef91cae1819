"""COCO run-length encoding of one instance's mask from its box alone, never from an image-sized array.

pycocotools encodes a mask column by column (Fortran order) into alternating runs of 0s and 1s, starting with
0s, over the whole H x W image. An instance's pixels all lie in its box, so its runs of 1s are the box's runs
of 1s moved into the image's frame: a run in column c of the box, rows r0..r1, is the run at
``(x1 + c) * H + y1 + r0`` .. ``(x1 + c) * H + y1 + r1`` of the image. Runs that meet across a column
boundary (possible only when the box spans the image's full height) are joined, the gaps between runs are the
0-runs, and pycocotools turns the counts into its compressed string (``frPyObjects``), so the result is
byte-identical to ``pycocotools.mask.encode`` of the full mask (tests/segmentation/test_rle.py checks it).
Work and memory: O(box area).

``decode_in_box`` goes the other way for one box: the compressed string's counts are read with numpy (the
format of pycocotools' ``rleFrString``: 5-bit groups, 0x20 = more follows, 0x10 on the last = negative, each
count after the second stored as the difference to the count two before) and only the box's columns are
filled. Work and memory: O(runs + box area).
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_util

__all__ = ["decode_in_box", "encode_in_box", "run_counts"]


def encode_in_box(box_mask: np.ndarray, x1: int, y1: int, height: int, width: int) -> dict:
    """COCO compressed RLE ``{"size": [height, width], "counts": str}`` of an image whose only set pixels are
    ``box_mask`` (bool [h, w]) placed with its top-left pixel at column ``x1``, row ``y1``.

    Raises ValueError when the placed box does not fit inside the image.
    """
    box_mask = np.asarray(box_mask, dtype=bool)
    h, w = box_mask.shape
    if x1 < 0 or y1 < 0 or x1 + w > width or y1 + h > height:
        raise ValueError(f"a {w}x{h} mask at ({x1}, {y1}) does not fit in a {width}x{height} image")
    # The box's columns one after another, each between two 0s: changes of value alternate start / end of a
    # run of 1s (every column starts and ends on a 0), so one comparison pass finds all runs.
    padded = np.zeros((w, h + 2), dtype=bool)
    padded[:, 1:-1] = (
        box_mask.T
    )  # a plain copy when box_mask is column-major (Fortran order), as the engine's
    flat = padded.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # first pixel of each new value, in padded indices
    column, row = np.divmod(changes, h + 2)
    position = (x1 + column) * height + y1 + row - 1  # the same pixel in the image's column-major order
    starts, ends = position[0::2], position[1::2]
    if len(starts):
        joined = ends[:-1] == starts[1:]  # a run ending at a column's last row goes on at the next's first
        starts, ends = starts[np.r_[True, ~joined]], ends[np.r_[~joined, True]]
    bounds = np.concatenate([[0], np.stack([starts, ends], axis=1).ravel(), [height * width]])
    counts = np.diff(bounds)
    if len(counts) > 1 and counts[-1] == 0:
        counts = counts[:-1]  # the mask ends on a 1: pycocotools writes no empty last run
    rle = mask_util.frPyObjects({"size": [height, width], "counts": counts.tolist()}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def run_counts(compressed: str | bytes) -> np.ndarray:
    """The run lengths int64 [R] of a COCO compressed RLE string (0s first, alternating)."""
    raw = compressed.encode("ascii") if isinstance(compressed, str) else bytes(compressed)
    if not raw:
        return np.zeros(0, dtype=np.int64)
    codes = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    last = (codes & 0x20) == 0  # the character that ends a number
    number = np.concatenate([[0], np.cumsum(last)[:-1]])
    first = np.flatnonzero(np.r_[True, last[:-1]])
    position = np.arange(len(codes)) - first[number]
    values = np.zeros(int(number[-1]) + 1, dtype=np.int64)
    np.add.at(values, number, (codes & 0x1F) << (5 * position))
    ends = np.flatnonzero(last)
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * (position[ends[negative]] + 1))
    counts = values.copy()
    if len(values) > 3:  # count m > 2 is stored minus count m - 2
        counts[3::2] = np.cumsum(values[3::2]) + values[1]
        counts[4::2] = np.cumsum(values[4::2]) + values[2]
    return counts


def decode_in_box(rle: dict, box) -> np.ndarray:
    """The mask of COCO RLE ``rle`` (``{"size": [H, W], "counts": str}``) inside ``box`` (x1, y1, x2, y2 pixels,
    x2/y2 exclusive, within the image) as bool [y2 - y1, x2 - x1]."""
    height, width = (int(v) for v in rle["size"])
    x1, y1, x2, y2 = (int(v) for v in box)
    if not (0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height):
        raise ValueError(f"box {[x1, y1, x2, y2]} is not inside the {width}x{height} image")
    bounds = np.cumsum(np.concatenate([[0], run_counts(rle["counts"])]))
    starts, ends = bounds[1:-1:2], bounds[2::2]  # runs of 1s, in column-major pixel indices
    keep = (ends > x1 * height) & (starts < x2 * height)  # runs that reach the box's columns
    starts, ends = starts[keep], ends[keep]
    # cut each run at column boundaries: one piece per column it touches
    first, last = starts // height, (ends - 1) // height
    pieces = last - first + 1
    column = np.repeat(first, pieces) + (
        np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    )
    top = np.maximum(np.repeat(starts, pieces) - column * height, 0)
    bottom = np.minimum(np.repeat(ends, pieces) - column * height, height)
    inside = (column >= x1) & (column < x2)
    column, top, bottom = (
        column[inside] - x1,
        np.clip(top[inside], y1, y2) - y1,
        np.clip(bottom[inside], y1, y2) - y1,
    )
    # per box column: +1 where a run starts, -1 after it; runs never overlap, so the running sums are 0 or 1
    edges = np.zeros((x2 - x1, y2 - y1 + 1), dtype=np.int8)
    np.add.at(edges, (column, top), 1)
    np.add.at(edges, (column, bottom), -1)
    return np.cumsum(edges[:, :-1], axis=1, dtype=np.int8).view(bool).T
