/**
 * Pixel layers of the overlay, computed on typed arrays (no DOM): the viewer copies them into canvases.
 * Pixels are 32-bit RGBA words as written by colors.packRgba, row-major, width * height.
 */

import { forEachMaskPixel } from "./rle.js";

/**
 * Colour every pixel by the instance on top there.
 * @param {Int32Array} idMap instance-id map (-1 = none)
 * @param {Uint32Array} palette packed colour per instance index
 * @param {Uint32Array} out receives the pixels; fully overwritten
 */
export function paintFill(idMap, palette, out) {
  for (let p = 0; p < idMap.length; p++) {
    const id = idMap[p];
    out[p] = id < 0 ? 0 : palette[id];
  }
}

/**
 * Mark the outline of every visible instance: its pixels that touch (4-neighbourhood) another instance, the
 * background or the image edge, thickened to a disc of `radius` pixels around each such pixel so outlines stay
 * visible when a large photo is shown scaled down. Cost: one pass over the map plus radius² per outline pixel.
 * @param {Int32Array} idMap
 * @param {number} width
 * @param {number} height
 * @param {Uint32Array} palette
 * @param {Uint32Array} out receives the pixels; fully overwritten
 * @param {number} [radius] 0 = one pixel wide
 */
export function paintOutlines(idMap, width, height, palette, out, radius = 0) {
  out.fill(0);
  const offsets = [];
  for (let dy = -radius; dy <= radius; dy++) {
    for (let dx = -radius; dx <= radius; dx++) if (dx * dx + dy * dy <= radius * radius) offsets.push(dx, dy);
  }
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const edgeRow = y === 0 || y === height - 1;
    for (let x = 0; x < width; x++) {
      const p = row + x;
      const id = idMap[p];
      if (id < 0) continue;
      if (
        edgeRow ||
        x === 0 ||
        x === width - 1 ||
        idMap[p - 1] !== id ||
        idMap[p + 1] !== id ||
        idMap[p - width] !== id ||
        idMap[p + width] !== id
      ) {
        const color = palette[id];
        if (radius === 0) {
          out[p] = color;
          continue;
        }
        for (let k = 0; k < offsets.length; k += 2) {
          const nx = x + offsets[k];
          const ny = y + offsets[k + 1];
          if (nx >= 0 && ny >= 0 && nx < width && ny < height) out[ny * width + nx] = color;
        }
      }
    }
  }
}

/**
 * One instance's own mask as a patch the size of its bounds, filled with one colour: what the viewer draws
 * over everything to highlight the hovered instance, so a pointer move only copies this small patch.
 * @param {{height: number, width: number, counts: number[]}} runs the instance's mask runs (column-major)
 * @param {{x: number, y: number, width: number, height: number}} bounds from rle.maskBounds
 * @param {number} rgba packed colour
 * @returns {Uint32Array} bounds.width * bounds.height pixels, row-major
 */
export function instancePatch(runs, bounds, rgba) {
  const patch = new Uint32Array(bounds.width * bounds.height);
  forEachMaskPixel(runs, (_index, x, y) => {
    patch[(y - bounds.y) * bounds.width + (x - bounds.x)] = rgba;
  });
  return patch;
}
