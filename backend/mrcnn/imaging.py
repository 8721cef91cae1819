"""Pre-processing before the network: molding images in (unmolding detections out is ``detections.py``).

Molding follows matterport's ``utils.resize_image`` + ``mold_image``: scale so the short side reaches
IMAGE_MIN_DIM without the long side passing IMAGE_MAX_DIM ("square" mode; see ``resize_image`` for the others),
resize bilinearly exactly as scikit-image's ``resize(order=1, mode="constant", anti_aliasing=False)`` does
(the reference's implementation; edges blend with black when enlarging), truncate back to the input dtype,
zero-pad, then subtract MEAN_PIXEL.

``image_meta`` is a float vector [12 + NUM_CLASSES]: image id, original shape (3), molded shape (3), window
(y1, x1, y2, x2 pixels of the image inside the molded one), scale, active class ids (zeros at inference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def as_rgb(image) -> np.ndarray:
    """Any HxW, HxWx1, HxWx3 or HxWx4 array (uint8 or float in 0..255) -> HxWx3; alpha is dropped."""
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"image must hold numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"image has no pixels: shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    return array


def linear_weights(in_size: int, out_size: int):
    """Source indices and weights of 1-D linear resampling with scipy ``zoom(grid_mode=True)`` arithmetic.

    Output pixel i samples input coordinate (i + 0.5) * in/out - 0.5; neighbours outside the input count as
    0. The upper weight is 1 - (1 - t), as scipy computes it, so truncation to uint8 agrees bit for bit.
    """
    coords = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5
    lo = np.floor(coords)
    w_lo = 1.0 - (coords - lo)
    w_hi = 1.0 - w_lo
    lo = lo.astype(np.int64)
    hi = lo + 1
    w_lo = np.where((lo >= 0) & (lo < in_size), w_lo, 0.0)
    w_hi = np.where((hi >= 0) & (hi < in_size), w_hi, 0.0)
    return np.clip(lo, 0, in_size - 1), w_lo, np.clip(hi, 0, in_size - 1), w_hi


def resize_bilinear(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of [H, W, ...] to [out_h, out_w, ...] in float64, as scikit-image's
    ``resize(order=1, mode="constant", cval=0, anti_aliasing=False)`` computes it (scipy's zoom: the four
    neighbours' (value * y-weight) * x-weight summed in row-major order).

    The four neighbour grids are gathered in the input's dtype and only then made float64, so shrinking a
    40-megapixel photo costs memory of the output's size, not 8 bytes per input value (same values: the
    conversion is exact)."""
    data = np.asarray(image)
    y_lo, wy_lo, y_hi, wy_hi = linear_weights(data.shape[0], out_h)
    x_lo, wx_lo, x_hi, wx_hi = linear_weights(data.shape[1], out_w)
    extra = (1,) * (data.ndim - 2)
    wy_lo, wy_hi = wy_lo.reshape(-1, 1, *extra), wy_hi.reshape(-1, 1, *extra)
    wx_lo, wx_hi = wx_lo.reshape(1, -1, *extra), wx_hi.reshape(1, -1, *extra)
    top, bottom = data[y_lo], data[y_hi]

    def grid(rows, columns):
        return rows[:, columns].astype(np.float64)

    out = grid(top, x_lo) * wy_lo * wx_lo
    out += grid(top, x_hi) * wy_lo * wx_hi
    out += grid(bottom, x_lo) * wy_hi * wx_lo
    out += grid(bottom, x_hi) * wy_hi * wx_hi
    return out


@dataclass(frozen=True)
class Molding:
    """How one image was molded: ``window`` (y1, x1, y2, x2) pixels inside the molded image, and ``scale``."""

    original_shape: tuple[int, int, int]
    molded_shape: tuple[int, int, int]
    window: tuple[int, int, int, int]
    scale: float


def resize_image(image, min_dim, max_dim, min_scale=0, mode="square", crop_offset=None):
    """(resized-and-padded image in the input dtype, window, scale, padding, crop) like matterport's.

    Modes: "none" (unchanged); "square" (scale up to min_dim / down to max_dim, pad to max_dim x max_dim);
    "pad64" (scale up to min_dim, pad each side to a multiple of 64); "crop" (scale up to min_dim, then a
    min_dim x min_dim crop at ``crop_offset`` (y, x); centred if None, where matterport picks it at random).
    """
    dtype = image.dtype
    h, w = image.shape[:2]
    window, scale, padding, crop = (0, 0, h, w), 1, [(0, 0), (0, 0), (0, 0)], None
    if mode == "none":
        return image, window, scale, padding, crop
    if min_dim:
        scale = max(1, min_dim / min(h, w))
    if min_scale and scale < min_scale:
        scale = min_scale
    if max_dim and mode == "square":
        image_max = max(h, w)
        if round(image_max * scale) > max_dim:
            scale = max_dim / image_max
    if scale != 1:
        image = resize_bilinear(image, round(h * scale), round(w * scale))
    image = image.astype(dtype)
    if mode == "square":
        h, w = image.shape[:2]
        top, left = (max_dim - h) // 2, (max_dim - w) // 2
        padding = [(top, max_dim - h - top), (left, max_dim - w - left), (0, 0)]
        image = np.pad(image, padding, mode="constant", constant_values=0)
        window = (top, left, h + top, w + left)
    elif mode == "pad64":
        h, w = image.shape[:2]
        if min_dim % 64:
            raise ValueError(f"pad64 mode needs IMAGE_MIN_DIM to be a multiple of 64, got {min_dim}")
        pads = []
        for size in (h, w):
            extra = (64 - size % 64) % 64
            pads.append((extra // 2, extra - extra // 2))
        padding = [pads[0], pads[1], (0, 0)]
        image = np.pad(image, padding, mode="constant", constant_values=0)
        window = (pads[0][0], pads[1][0], h + pads[0][0], w + pads[1][0])
    elif mode == "crop":
        h, w = image.shape[:2]
        if crop_offset is None:
            crop_offset = ((h - min_dim) // 2, (w - min_dim) // 2)
        y, x = crop_offset
        crop = (y, x, min_dim, min_dim)
        image = image[y : y + min_dim, x : x + min_dim]
        window = (0, 0, min_dim, min_dim)
    else:
        raise ValueError(f"unknown IMAGE_RESIZE_MODE {mode!r}; use none, square, pad64 or crop")
    return image, window, scale, padding, crop


def compose_image_meta(image_id, original_shape, molded_shape, window, scale, active_class_ids) -> np.ndarray:
    return np.array(
        [image_id, *original_shape, *molded_shape, *window, scale, *active_class_ids], dtype=np.float64
    )


def parse_image_meta(meta) -> dict[str, np.ndarray]:
    """The fields of image_meta rows [..., 12 + NUM_CLASSES]."""
    meta = np.asarray(meta)
    return {
        "image_id": meta[..., 0].astype(np.int32),
        "original_image_shape": meta[..., 1:4].astype(np.int32),
        "image_shape": meta[..., 4:7].astype(np.int32),
        "window": meta[..., 7:11].astype(np.int32),
        "scale": meta[..., 11].astype(np.float32),
        "active_class_ids": meta[..., 12:].astype(np.int32),
    }


def mold_image(image, config):
    """(molded float32 [H', W', 3] minus MEAN_PIXEL, image_meta float64 [12 + NUM_CLASSES], Molding)."""
    rgb = as_rgb(image)
    resized, window, scale, _, _ = resize_image(
        rgb,
        min_dim=config.IMAGE_MIN_DIM,
        max_dim=config.IMAGE_MAX_DIM,
        min_scale=config.IMAGE_MIN_SCALE,
        mode=config.IMAGE_RESIZE_MODE,
    )
    molded = (resized.astype(np.float32) - np.asarray(config.MEAN_PIXEL, dtype=np.float64)).astype(np.float32)
    meta = compose_image_meta(0, rgb.shape, molded.shape, window, scale, np.zeros(config.NUM_CLASSES))
    return molded, meta, Molding(tuple(rgb.shape), tuple(molded.shape), tuple(int(v) for v in window), scale)
