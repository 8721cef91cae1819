"""Draw a segmentation over its image, the way matterport's ``display_instances`` shows it.

Each instance gets its own colour; its mask is filled with that colour at 50% opacity and outlined in it, its box
is drawn dashed, and a caption "class score" sits inside the box's top-left corner. matterport picks random
colours; ours come from a fixed sequence (``instance_color``, the browser's too), so the same result always
looks the same and neighbouring ids differ strongly. Pillow only (no matplotlib): the caption font is the one Pillow ships.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from backend.segmentation.result import SegmentationResult
from backend.segmentation.rle import decode_in_box

__all__ = ["render_overlay", "instance_color", "MASK_ALPHA"]

MASK_ALPHA = 0.5  # opacity of the mask fill, as matterport's apply_mask
BOX_ALPHA = 0.7  # opacity of the dashed box, as matterport's Rectangle patch
BOX_WIDTH = 2  # pixels
DASH, GAP = 6, 4  # pixels along a box side
CAPTION_OFFSET = 8  # pixels below the box top, as matterport places its caption
GOLDEN_ANGLE_DEGREES = 137.50776405003785


def instance_color(index: int) -> tuple[int, int, int]:
    """The RGB colour (0..255) of the instance with this id.

    The same sequence as the browser's ``instanceColor`` (frontend/src/colors.js), so the PNG overlay and the
    interactive view agree: hues step by the golden angle, so consecutive ids are far apart on the colour
    wheel, and the lightness cycles through three levels so ids whose hues come close again still differ.
    """
    hue = ((index * GOLDEN_ANGLE_DEGREES + 12.0) % 360.0) / 360.0
    lightness = (0.5, 0.62, 0.4)[index % 3]
    r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.85)
    return tuple(math.floor(v * 255 + 0.5) for v in (r, g, b))  # round half up, as JavaScript's Math.round


def render_overlay(image, result: SegmentationResult) -> Image.Image:
    """``image`` (PIL image or uint8 array [H, W, 3]) with ``result`` drawn on it -> new RGB PIL image, same size.

    Drawn box by box: each mask is decoded inside its box only (``Instance.box_mask``) and tinted there, and
    each box and caption is composited on a layer the size of the box, so memory and time follow the objects,
    not the image (one copy of the image is the only image-sized array). Raises ValueError when the image size
    differs from the result's width x height.
    """
    base = _as_rgb_array(image)
    height, width = base.shape[:2]
    if (width, height) != (result.width, result.height):
        raise ValueError(f"image is {width}x{height} but the result is for {result.width}x{result.height}")

    canvas = base.copy()
    # Lowest score first, so the most confident instance ends up on top where instances overlap.
    instances = sorted(result.instances, key=lambda i: i.score)
    for inst in instances:
        box, mask = _mask_in_box(inst, width, height)
        region = canvas[box[1] : box[3], box[0] : box[2]]
        np.copyto(region, _tinted(region, instance_color(inst.id)), where=mask[..., None])
    for inst in instances:  # outlines after every fill, so no tint covers an outline
        box, mask = _mask_in_box(inst, width, height)
        canvas[box[1] : box[3], box[0] : box[2]][_outline(mask)] = instance_color(inst.id)

    font = _caption_font(width, height)
    for inst in instances:
        _draw_box_and_caption(canvas, inst, font)
    return Image.fromarray(canvas, "RGB")


def _tinted(pixels: np.ndarray, color) -> np.ndarray:
    """``pixels`` (uint8 [..., 3]) half covered by ``color``: rint(p * 0.5 + c * 0.5), rounding half to even, in
    integers (exact for MASK_ALPHA 0.5, and faster than float arithmetic on a box's worth of pixels)."""
    if MASK_ALPHA != 0.5:
        blend = pixels * np.float32(1.0 - MASK_ALPHA) + np.asarray(color, np.float32) * np.float32(MASK_ALPHA)
        return np.rint(blend).astype(np.uint8)
    total = pixels.astype(np.uint16) + np.asarray(color, np.uint16)
    half = total >> 1
    return (half + (total & half & 1)).astype(np.uint8)  # .5 rounds up only to an even result


def _mask_in_box(inst, width: int, height: int):
    """(the instance's box clipped to the image, its mask there as bool [h, w])."""
    x1, y1, x2, y2 = inst.box
    box = (min(max(x1, 0), width), min(max(y1, 0), height), min(max(x2, 0), width), min(max(y2, 0), height))
    box = (box[0], box[1], max(box[0], box[2]), max(box[1], box[3]))
    return box, decode_in_box(inst.mask_rle, box)


def _draw_box_and_caption(canvas: np.ndarray, inst, font) -> None:
    """The dashed box (BOX_ALPHA opaque) and the caption of ``inst``, composited onto ``canvas`` (uint8
    [H, W, 3], changed in place) through a transparent layer that covers only the box and the caption."""
    height, width = canvas.shape[:2]
    color = instance_color(inst.id)
    caption = f"{inst.class_name} {inst.score:.3f}"
    measure = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = measure.textbbox((0, 0), caption, font=font, stroke_width=1)
    # matterport's place (inside the box, below its top edge), moved in where it would leave the image.
    x = max(min(inst.box[0] + BOX_WIDTH, width - right - 1), -left)
    y = max(min(inst.box[1] + CAPTION_OFFSET, height - bottom - 1), -top)
    # the part of the image this instance draws on: the box (lines are BOX_WIDTH wide) and the caption
    pad = BOX_WIDTH + 1
    rx1 = max(min(inst.box[0] - pad, x + left), 0)
    ry1 = max(min(inst.box[1] - pad, y + top), 0)
    rx2 = min(max(inst.box[2] + pad, x + right + 1), width)
    ry2 = min(max(inst.box[3] + pad, y + bottom + 1), height)
    if rx2 <= rx1 or ry2 <= ry1:
        return
    layer = Image.new("RGBA", (rx2 - rx1, ry2 - ry1), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    x1, y1, x2, y2 = inst.box
    _dashed_rectangle(draw, (x1 - rx1, y1 - ry1, x2 - rx1, y2 - ry1), (*color, round(255 * BOX_ALPHA)))
    draw.text(
        (x - rx1, y - ry1),
        caption,
        fill=(255, 255, 255, 255),
        font=font,
        stroke_width=1,
        stroke_fill=(0, 0, 0, 255),
    )
    region = Image.fromarray(canvas[ry1:ry2, rx1:rx2], "RGB").convert("RGBA")
    canvas[ry1:ry2, rx1:rx2] = np.asarray(Image.alpha_composite(region, layer).convert("RGB"))


def _as_rgb_array(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H, W, 3], got {array.dtype} {list(array.shape)}")
    return array


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` (bool [H, W]) that touch a pixel outside it (4-neighbourhood) or the image border."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = (
        padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    )
    return mask & ~interior


def _caption_font(width: int, height: int) -> ImageFont.ImageFont:
    # matterport's 11 pt caption is sized for a 16-inch figure; scale with the image so it stays legible.
    return ImageFont.load_default(size=max(11, round(min(width, height) / 60)))


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box, fill) -> None:
    """Dashed outline of ``box`` (x1, y1, x2, y2), x2/y2 exclusive, drawn on its inside edge."""
    x1, y1, x2, y2 = box
    x2, y2 = x2 - 1, y2 - 1
    if x2 < x1 or y2 < y1:
        return
    for (ax, ay), (bx, by) in (
        ((x1, y1), (x2, y1)),
        ((x2, y1), (x2, y2)),
        ((x2, y2), (x1, y2)),
        ((x1, y2), (x1, y1)),
    ):
        length = max(abs(bx - ax), abs(by - ay))
        if length == 0:
            draw.point((ax, ay), fill=fill)
            continue
        for start in range(0, length + 1, DASH + GAP):
            end = min(start + DASH, length)
            sx, sy = ax + (bx - ax) * start / length, ay + (by - ay) * start / length
            ex, ey = ax + (bx - ax) * end / length, ay + (by - ay) * end / length
            draw.line((sx, sy, ex, ey), fill=fill, width=BOX_WIDTH)
