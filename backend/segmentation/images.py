"""Decoding uploaded and command-line images into RGB, with limits checked before the expensive work.

``load_image(source, limits)`` is the one gate every image passes (web upload, CLI, worker):

1. size in bytes against ``limits.max_bytes`` (before reading a file into memory);
2. format by content (``Image.open`` reads only the header): JPEG, PNG, WebP, BMP, TIFF, GIF (first frame);
3. width x height from the header against ``limits.max_pixels`` *before* the pixels are decoded, so a small
   file that declares a huge canvas (a decompression bomb) costs nothing. Pillow's own
   ``MAX_IMAGE_PIXELS`` guard is silenced here; our limit is the mechanism;
4. decode, apply the EXIF orientation, and normalise to 8-bit RGB: 16-bit and float greyscale are rescaled,
   CMYK/palette/greyscale converted, transparency composited onto white.

Every refusal is an ``ImageRejected`` with a machine ``code``, a human ``message`` that says what was wrong
and the limit, and the HTTP status a web caller should answer with.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MB = 1024 * 1024

# Pillow format names we accept -> the name we show people. MPO is the multi-picture JPEG some cameras write.
ACCEPTED_FORMATS = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "BMP": "BMP",
    "TIFF": "TIFF",
    "GIF": "GIF",
}
ACCEPTED_FORMATS_TEXT = "JPEG, PNG, WebP, BMP, TIFF or GIF"

# Our pixel limit (checked from the header in ``open_checked``) is the guard against decompression bombs;
# Pillow's global one would refuse canvases above ~179 MP even when a deployment allows more, and warn
# below that. Every user image passes through this module.
Image.MAX_IMAGE_PIXELS = None


class ImageRejected(ValueError):
    """An image maskweb will not process.

    ``code``: ``too_large`` | ``too_many_pixels`` | ``unsupported_format`` | ``not_an_image`` | ``truncated``
    | ``empty``. ``message``: one sentence for a person, naming the limit where there is one.
    ``http_status``: 413 for size limits, 415 for formats (and non-images), 400 otherwise.
    """

    STATUS = {
        "too_large": 413,
        "too_many_pixels": 413,
        "unsupported_format": 415,
        "not_an_image": 415,
        "truncated": 400,
        "empty": 400,
    }

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = self.STATUS.get(code, 400)


@dataclass(frozen=True)
class ImageLimits:
    """``max_bytes``: encoded file size; ``max_pixels``: width x height of the decoded image."""

    max_bytes: int = 25 * MB
    max_pixels: int = 40_000_000


def format_bytes(n: int) -> str:
    if n >= MB:
        return f"{n / MB:.1f} MB".replace(".0 MB", " MB")
    if n >= 1024:
        return f"{n / 1024:.1f} KB".replace(".0 KB", " KB")
    return f"{n} bytes"


def _format_pixels(n: int) -> str:
    return f"{n / 1e6:.1f} megapixels".replace(".0 megapixels", " megapixels")


def check_byte_size(size: int, limits: ImageLimits) -> None:
    """Raise ImageRejected (``empty`` or ``too_large``) for an encoded size of ``size`` bytes."""
    if size == 0:
        raise ImageRejected(
            "empty", f"The file is empty (0 bytes); expected a {ACCEPTED_FORMATS_TEXT} image."
        )
    if size > limits.max_bytes:
        raise ImageRejected(
            "too_large",
            f"The file is {format_bytes(size)}, over the limit of {format_bytes(limits.max_bytes)} per image.",
        )


def _read(source: bytes | str | Path, limits: ImageLimits) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        size = len(data)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise FileNotFoundError(f"image file not found: {path}") from None
        data = b""
    check_byte_size(size, limits)
    if not data:
        data = Path(source).read_bytes()
    return data


def open_checked(source: bytes | str | Path, limits: ImageLimits = ImageLimits()) -> Image.Image:
    """Open ``source`` lazily and check size, format and pixel count; the pixels are not decoded yet.

    Raises ImageRejected (``empty``, ``too_large``, ``not_an_image``, ``unsupported_format``,
    ``too_many_pixels``) or FileNotFoundError for a missing path.
    """
    data = _read(source, limits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            # Pillow refuses canvases over twice its own limit before we can read the size: still ours to report.
            raise ImageRejected(
                "too_many_pixels",
                f"The image is larger than the limit of {_format_pixels(limits.max_pixels)} "
                "(width x height), so it was not decoded.",
            ) from None
        except Exception:  # Pillow raises UnidentifiedImageError, but broken headers raise others too
            raise ImageRejected(
                "not_an_image",
                f"The file is not an image maskweb can read; send a {ACCEPTED_FORMATS_TEXT} file.",
            ) from None
    if img.format not in ACCEPTED_FORMATS:
        raise ImageRejected(
            "unsupported_format",
            f"The file is a {img.format} image; maskweb accepts {ACCEPTED_FORMATS_TEXT}.",
        )
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageRejected(
            "not_an_image", f"The image header declares an empty canvas ({width} x {height})."
        )
    if width * height > limits.max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"The image is {width} x {height} = {_format_pixels(width * height)}, over the limit of "
            f"{_format_pixels(limits.max_pixels)}.",
        )
    return img


def load_image(source: bytes | str | Path, limits: ImageLimits = ImageLimits()) -> Image.Image:
    """Decode ``source`` (bytes or a file path) into a new 8-bit RGB image, EXIF orientation applied.

    GIF and multi-page TIFF give their first frame. Raises ImageRejected (see ``open_checked``, plus
    ``truncated`` for data that ends early or does not decode) or FileNotFoundError for a missing path.
    """
    img = open_checked(source, limits)
    try:
        img.seek(0)
        img.load()
    except Exception:  # OSError "truncated", SyntaxError/ValueError from broken chunks, zlib errors...
        raise ImageRejected(
            "truncated",
            f"The {ACCEPTED_FORMATS[img.format]} image could not be decoded: the file is truncated or corrupt.",
        ) from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a malformed EXIF block: the pixels are fine, show them as stored
        pass
    return img if img.mode == "RGB" else to_rgb(img)  # exif_transpose made a copy already: no third one


STRIP_PIXELS = 1 << 20  # greyscale rescaling works on strips of about this many pixels (a few MB each)


def _bytes_per_pixel(mode: str) -> int:
    """What Pillow stores per pixel for ``mode`` (2-band and 3-band modes take 4 bytes)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def decode_cost(mode: str, width: int, height: int) -> int:
    """The peak memory, in bytes, of ``load_image`` for an image whose header says ``mode`` and ``width`` x
    ``height``: the decoded pixels, their EXIF-rotated copy, and what ``to_rgb`` builds for that mode (an 8-bit
    greyscale plane and the RGB result for 16/32-bit and float greyscale; RGBA, a white background and the
    composite for transparency; the RGB result otherwise), plus a strip of working space for greyscale."""
    pixels = width * height
    source = _bytes_per_pixel(mode)
    working = 0
    if mode == "RGB":
        made = 0
    elif mode.startswith("I;16") or mode in ("I", "F"):
        made = 1 + 4
        working = min(pixels, STRIP_PIXELS) * 8  # a strip's copy and its 32-bit arithmetic
    elif mode in ("RGBA", "RGBa", "LA", "La", "PA", "P"):
        made = 4 + 4 + 4
    else:
        made = 4
    return pixels * (2 * source + made) + working


def _strips(img: Image.Image):
    """``(top, values)`` for horizontal strips of ``img`` (a greyscale mode) as numpy arrays: one strip's copy
    at a time instead of the whole image's."""
    width, height = img.size
    rows = max(1, STRIP_PIXELS // max(1, width))
    for top in range(0, height, rows):
        yield top, np.asarray(img.crop((0, top, width, min(height, top + rows))))


def _greyscale_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale -> 8-bit RGB without a float64 copy of the image: integer
    arithmetic (or float32 for float images) strip by strip into one 8-bit plane.

    16-bit maps 65535 -> 255; 32-bit integer by its 16-bit range when any value exceeds 255, else as is;
    float by 0..1 when no value exceeds 1, else by 0..255. Values outside the range are clipped, NaN is 0."""
    width, height = img.size
    mode = img.mode
    if mode == "I":
        full_scale = 65535 if any(v.size and v.max() > 255 for _, v in _strips(img)) else 255
    elif mode == "F":
        full_scale = 1 if all(not v.size or np.nanmax(v, initial=0) <= 1.0 for _, v in _strips(img)) else 255
    else:
        full_scale = 65535
    plane = np.empty((height, width), dtype=np.uint8)
    for top, values in _strips(img):
        if mode == "F":
            scaled = np.nan_to_num(values.astype(np.float32, copy=False) * np.float32(255 / full_scale))
            out = np.rint(np.clip(scaled, 0, 255))
        elif full_scale == 65535:  # round(v * 255 / 65535) == (v + 128) // 257 for integers 0..65535
            wide = values.astype(np.int32)  # 4 bytes per pixel of one strip: room for v + 128
            np.clip(wide, 0, 65535, out=wide)
            wide += 128
            wide //= 257
            out = wide
        else:
            out = np.clip(values, 0, 255)
        plane[top : top + values.shape[0]] = out
    return Image.fromarray(plane, "L").convert("RGB")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. Transparency is composited onto white; 16-bit greyscale is rescaled
    (65535 -> 255), 32-bit integer greyscale by its 16-bit range when it exceeds 255, float by 0..1.
    Peak memory: ``decode_cost``."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _greyscale_to_rgb(img)
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in img.info)
    if mode in ("L", "1") and "transparency" in img.info:
        has_alpha = True
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def to_array(img: Image.Image) -> np.ndarray:
    """An RGB Pillow image -> ``uint8`` array ``[H, W, 3]`` (converting other modes with ``to_rgb``)."""
    if img.mode != "RGB":
        img = to_rgb(img)
    return np.asarray(img, dtype=np.uint8).copy()
