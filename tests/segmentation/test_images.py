"""backend.segmentation.images: limits before decoding, format by content, every mode normalised to 8-bit RGB."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from backend.segmentation.images import ImageLimits, ImageRejected, load_image, to_array


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def png_header_only(width: int, height: int, garbage: bytes = b"\x00" * 64) -> bytes:
    """A PNG that declares width x height but carries a few bytes of (invalid) pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", garbage) + chunk(b"IEND", b"")


DEFAULT_LIMITS = ImageLimits()


def rejected(data, limits=DEFAULT_LIMITS) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        load_image(data, limits)
    return info.value


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_each_accepted_format_decodes_to_rgb(fmt):
    rng = np.random.default_rng(0)
    pixels = np.zeros((24, 32, 3), np.uint8)
    pixels[:, :16] = (200, 30, 40)
    pixels[:, 16:] = (20, 180, 60)
    pixels[:2, :2] = rng.integers(0, 255, (2, 2, 3))
    data = encode(Image.fromarray(pixels), fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    img = load_image(data)
    assert img.mode == "RGB" and img.size == (32, 24)
    arr = to_array(img)
    assert arr.dtype == np.uint8 and arr.shape == (24, 32, 3)
    tolerance = 40 if fmt in ("JPEG", "WEBP", "GIF") else 0
    assert np.abs(arr[12, 8].astype(int) - (200, 30, 40)).max() <= tolerance
    assert np.abs(arr[12, 24].astype(int) - (20, 180, 60)).max() <= tolerance


def test_format_is_read_from_content_not_name(tmp_path):
    path = tmp_path / "photo.gif"  # actually a PNG
    path.write_bytes(encode(Image.new("RGB", (5, 4), (1, 2, 3)), "PNG"))
    assert load_image(path).getpixel((0, 0)) == (1, 2, 3)


def test_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (10, 10), (255, 0, 0)), Image.new("RGB", (10, 10), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert load_image(buf.getvalue()).getpixel((5, 5)) == (255, 0, 0)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_greyscale_is_rescaled_not_clipped(fmt):
    values = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16)
    img = load_image(encode(Image.fromarray(values), fmt))
    assert to_array(img)[0, :, 0].tolist() == [0, 64, 128, 255]
    assert to_array(img)[0, 2].tolist() == [128, 128, 128]


def test_cmyk_jpeg_becomes_rgb():
    img = load_image(encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=100))
    r, g, b = img.getpixel((8, 8))
    assert img.mode == "RGB" and r > 230 and g < 25 and b < 25


def test_palette_with_transparency_is_composited_on_white():
    img = Image.new("P", (4, 2), 0)
    img.putpalette([0, 0, 255] + [0, 255, 0] + [0] * 762)
    img.putpixel((3, 1), 1)
    out = load_image(encode(img, "PNG", transparency=0))
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((3, 1)) == (0, 255, 0)


def test_palette_without_transparency_keeps_its_colours():
    img = Image.new("P", (2, 2), 0)
    img.putpalette([10, 20, 30] + [0] * 765)
    assert load_image(encode(img, "PNG")).getpixel((1, 1)) == (10, 20, 30)


def test_alpha_is_composited_on_white():
    img = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    img.putpixel((1, 0), (0, 0, 0, 128))
    out = to_array(load_image(encode(img, "PNG")))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert all(abs(v - 127) <= 1 for v in out[0, 1])


def test_greyscale_with_alpha_and_plain_greyscale():
    la = Image.new("LA", (2, 2), (50, 255))
    assert load_image(encode(la, "PNG")).getpixel((0, 0)) == (50, 50, 50)
    assert load_image(encode(Image.new("L", (3, 3), 77), "PNG")).getpixel((1, 1)) == (77, 77, 77)
    assert load_image(encode(Image.new("1", (3, 3), 1), "BMP")).getpixel((1, 1)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    # A 40x20 landscape with a red left half, stored with orientation 6 ("rotate 90 degrees clockwise").
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = load_image(encode(img, "JPEG", quality=95, exif=exif.tobytes()))
    assert out.size == (20, 40)
    top, bottom = out.getpixel((10, 5)), out.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # the red half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_pixel_limit_is_checked_from_the_header_before_decoding():
    # 7000 x 7000 = 49 MP with 64 bytes of garbage pixel data: refused for its size, never decoded
    # (decoding would have reported it as truncated).
    error = rejected(png_header_only(7000, 7000))
    assert error.code == "too_many_pixels" and error.http_status == 413
    assert "7000 x 7000" in error.message and "40 megapixels" in error.message


def test_pixel_limit_is_ours_not_pillows():
    small = encode(Image.new("RGB", (40, 30)), "PNG")  # 1200 px: far below anything Pillow warns about
    error = rejected(small, ImageLimits(max_pixels=1000))
    assert error.code == "too_many_pixels" and "0.001 megapixels" not in error.message
    assert load_image(small, ImageLimits(max_pixels=1200)).size == (40, 30)


def test_a_canvas_beyond_pillows_own_bomb_guard_is_still_our_error():
    # With a deployment limit above Pillow's own (~179 MP), the header passes and only the garbage data fails.
    assert rejected(png_header_only(30000, 30000), ImageLimits(max_pixels=10**12)).code == "truncated"
    error = rejected(png_header_only(30000, 30000))
    assert error.code == "too_many_pixels" and "40 megapixels" in error.message


def test_byte_limit(tmp_path):
    data = encode(Image.new("RGB", (64, 64)), "BMP")
    error = rejected(data, ImageLimits(max_bytes=1024))
    assert error.code == "too_large" and error.http_status == 413 and "1 KB" in error.message
    path = tmp_path / "big.bmp"
    path.write_bytes(data)
    assert rejected(path, ImageLimits(max_bytes=1024)).code == "too_large"


@pytest.mark.parametrize(
    ("data", "code", "status", "words"),
    [
        (b"", "empty", 400, "empty"),
        (b"hello, I am text", "not_an_image", 415, "JPEG, PNG, WebP, BMP, TIFF or GIF"),
        (encode(Image.new("RGB", (8, 8)), "PPM"), "unsupported_format", 415, "PPM"),
        (encode(Image.new("RGB", (8, 8)), "ICO"), "unsupported_format", 415, "ICO"),
    ],
)
def test_refusals_say_what_was_wrong(data, code, status, words):
    error = rejected(data)
    assert (error.code, error.http_status) == (code, status)
    assert words in error.message


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files(fmt):
    rng = np.random.default_rng(1)
    data = encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), fmt)
    error = rejected(data[: len(data) // 2])
    assert error.code == "truncated" and error.http_status == 400 and "truncated" in error.message


def test_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "nope.png")


@pytest.mark.parametrize(
    ("color_type", "samples", "expected"),
    [
        (2, [65535, 0, 0, 0, 32896, 65535], [(255, 0, 0), (0, 128, 255)]),  # 48-bit RGB
        (6, [65535, 0, 0, 65535, 0, 0, 0, 0], [(255, 0, 0), (255, 255, 255)]),  # 64-bit RGBA, 2nd clear
    ],
)
def test_16_bit_colour_pngs(color_type, samples, expected):
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    raw = b"\x00" + b"".join(struct.pack(">H", v) for v in samples)
    ihdr = struct.pack(">IIBBBBB", 2, 1, 16, color_type, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    img = load_image(data)
    assert img.mode == "RGB" and [img.getpixel((x, 0)) for x in range(2)] == expected
