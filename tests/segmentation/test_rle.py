"""encode_in_box: byte-identical to pycocotools' encoding of the full image mask, from the box alone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_util

from backend.segmentation.result import decode_mask
from backend.segmentation.rle import encode_in_box


def full_image_rle(box_mask, x1, y1, height, width):
    full = np.zeros((height, width), np.uint8)
    full[y1 : y1 + box_mask.shape[0], x1 : x1 + box_mask.shape[1]] = box_mask
    rle = mask_util.encode(np.asfortranarray(full))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


@st.composite
def placed_masks(draw):
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    h, w = draw(st.integers(1, height)), draw(st.integers(1, width))
    # boxes touching the edges come often: pick the corner from the ends of the range as well as inside it
    y1 = draw(st.one_of(st.just(0), st.just(height - h), st.integers(0, height - h)))
    x1 = draw(st.one_of(st.just(0), st.just(width - w), st.integers(0, width - w)))
    kind = draw(st.sampled_from(["random", "empty", "full", "blob"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "random":
        mask = rng.random((h, w)) < draw(st.floats(0.05, 0.95))
    elif kind == "empty":
        mask = np.zeros((h, w), bool)
    elif kind == "full":
        mask = np.ones((h, w), bool)
    else:
        yy, xx = np.mgrid[:h, :w]
        mask = (yy - h / 2) ** 2 / max(h, 1) ** 2 + (xx - w / 2) ** 2 / max(w, 1) ** 2 < 0.2
    return mask, x1, y1, height, width


@settings(max_examples=400, deadline=None)
@given(placed_masks())
def test_same_bytes_as_pycocotools_on_the_full_mask(case):
    mask, x1, y1, height, width = case
    assert encode_in_box(mask, x1, y1, height, width) == full_image_rle(mask, x1, y1, height, width)


@pytest.mark.parametrize(
    ("mask", "x1", "y1", "height", "width"),
    [
        (np.ones((5, 3), bool), 0, 0, 5, 3),  # the whole image: one run across every column boundary
        (np.ones((5, 2), bool), 1, 0, 5, 3),  # full-height box: runs join across its columns
        (np.ones((4, 2), bool), 1, 1, 5, 3),  # ends on the image's last pixel
        (np.zeros((2, 2), bool), 0, 0, 2, 2),
        (np.eye(3, dtype=bool), 2, 3, 6, 5),
    ],
)
def test_edge_cases(mask, x1, y1, height, width):
    assert encode_in_box(mask, x1, y1, height, width) == full_image_rle(mask, x1, y1, height, width)


def test_a_box_outside_the_image_is_an_error():
    with pytest.raises(ValueError, match="does not fit"):
        encode_in_box(np.ones((3, 3), bool), 2, 0, 3, 4)


@settings(max_examples=300, deadline=None)
@given(placed_masks(), st.data())
def test_decode_in_box_reads_the_box_of_any_mask(case, data):
    from backend.segmentation.rle import decode_in_box

    mask, x1, y1, height, width = case
    rle = full_image_rle(mask, x1, y1, height, width)
    full = decode_mask(rle)
    bx1 = data.draw(st.integers(0, width))
    bx2 = data.draw(st.integers(bx1, width))
    by1 = data.draw(st.integers(0, height))
    by2 = data.draw(st.integers(by1, height))
    np.testing.assert_array_equal(decode_in_box(rle, (bx1, by1, bx2, by2)), full[by1:by2, bx1:bx2])


def test_run_counts_reads_large_and_negative_differences():
    from backend.segmentation.rle import run_counts

    full = np.zeros((300, 200), np.uint8)
    full[10:290, 5:7] = 1  # long runs, then a short one: differences to two counts before go negative
    full[100:101, 150] = 1
    rle = mask_util.encode(np.asfortranarray(full))
    counts = run_counts(rle["counts"].decode("ascii"))
    assert counts.sum() == full.size
    assert counts.tolist()[:6] == [5 * 300 + 10, 280, 20, 280, 300 * 143 + 10 + 100, 1]
