"""Property-based fuzz of the decode path (issue 10, point 8): whatever bytes arrive, ``load_image`` returns a
bounded 8-bit RGB image or raises ``ImageRejected`` with a known code; nothing else escapes (no crash, no
unbounded allocation). Inputs: random bytes, and valid images of every accepted format with bytes flipped,
cut short, spliced or with their size fields rewritten."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from backend.segmentation.images import ImageLimits, ImageRejected, load_image

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PIL on corrupt EXIF: expected here

LIMITS = ImageLimits(max_bytes=256 * 1024, max_pixels=512 * 512)
CODES = set(ImageRejected.STATUS)


def _encoded(fmt: str, mode: str, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 90).save(buf, format=fmt)
    return buf.getvalue()


SEEDS = [
    _encoded(fmt, mode, size)
    for fmt, mode in (("PNG", "RGB"), ("PNG", "I;16"), ("JPEG", "RGB"), ("WEBP", "RGB"), ("BMP", "RGB"),
                      ("TIFF", "RGB"), ("GIF", "P"), ("PNG", "RGBA"), ("TIFF", "CMYK"))
    for size in ((1, 1), (17, 9))
]  # fmt: skip


@st.composite
def mutated_images(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "splice", "grow"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "splice":
            data[at:at] = draw(st.binary(max_size=64))
        elif kind == "grow" and len(data) > at + 4:  # a size field made huge: a decompression bomb's header
            data[at : at + 4] = b"\x7f\xff\xff\xff"
    return bytes(data)


def _decode_safely(data: bytes) -> None:
    try:
        img = load_image(data, LIMITS)
    except ImageRejected as exc:
        assert exc.code in CODES and exc.message
        return
    assert img.mode == "RGB" and img.width * img.height <= LIMITS.max_pixels


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_images())
def test_mutated_images_decode_or_are_rejected_cleanly(data):
    _decode_safely(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_decode_or_are_rejected_cleanly(data):
    _decode_safely(data)
