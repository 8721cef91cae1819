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

    Raises ValueError when the image size differs from the result's width x height.
    """
    base = _as_rgb_array(image)
    height, width = base.shape[:2]
    if (width, height) != (result.width, result.height):
        raise ValueError(f"image is {width}x{height} but the result is for {result.width}x{result.height}")

    pixels = base.astype(np.float32)
    # Lowest score first, so the most confident instance ends up on top where instances overlap.
    instances = sorted(result.instances, key=lambda i: i.score)
    masks = {inst.id: inst.mask() for inst in instances}
    for inst in instances:
        color = np.array(instance_color(inst.id), dtype=np.float32)
        mask = masks[inst.id]
        pixels[mask] = pixels[mask] * (1.0 - MASK_ALPHA) + color * MASK_ALPHA
    for inst in instances:
        pixels[_outline(masks[inst.id])] = instance_color(inst.id)
    canvas = Image.fromarray(np.rint(pixels).astype(np.uint8), "RGB").convert("RGBA")

    # Boxes and captions go on a transparent layer so the boxes keep matterport's partial opacity.
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = _caption_font(width, height)
    for inst in instances:
        color = instance_color(inst.id)
        _dashed_rectangle(draw, inst.box, (*color, round(255 * BOX_ALPHA)))
        caption = f"{inst.class_name} {inst.score:.3f}"
        left, top, right, bottom = draw.textbbox((0, 0), caption, font=font, stroke_width=1)
        # matterport's place (inside the box, below its top edge), moved in where it would leave the image.
        x = min(inst.box[0] + BOX_WIDTH, width - right - 1)
        y = min(inst.box[1] + CAPTION_OFFSET, height - bottom - 1)
        draw.text(
            (max(x, -left), max(y, -top)),
            caption,
            fill=(255, 255, 255, 255),
            font=font,
            stroke_width=1,
            stroke_fill=(0, 0, 0, 255),
        )
    return Image.alpha_composite(canvas, layer).convert("RGB")


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
