/**
 * Which instance is under the pointer: exact, per pixel, from the instance-id map (never from boxes).
 *
 * The overlay canvas holds the image at its own resolution and is scaled by CSS to the displayed size, so a
 * pointer position in CSS pixels maps to an image pixel through the canvas' on-screen rectangle.
 */

/**
 * Image pixel under a pointer position.
 * @param {number} clientX pointer position, CSS pixels (viewport)
 * @param {number} clientY
 * @param {{left: number, top: number, width: number, height: number}} rect the canvas' on-screen rectangle
 * @param {number} width image width, pixels
 * @param {number} height image height, pixels
 * @returns {{x: number, y: number} | null} integer pixel, or null when the pointer is outside the image
 */
export function pointerToPixel(clientX, clientY, rect, width, height) {
  if (rect.width <= 0 || rect.height <= 0) return null;
  const u = (clientX - rect.left) / rect.width;
  const v = (clientY - rect.top) / rect.height;
  if (!(u >= 0 && u < 1 && v >= 0 && v < 1)) return null;
  return { x: Math.min(width - 1, Math.floor(u * width)), y: Math.min(height - 1, Math.floor(v * height)) };
}

/**
 * Index of the instance drawn on top at a pixel, or -1 for background / outside.
 * @param {Int32Array} idMap row-major instance-id map (see rle.buildInstanceMap)
 * @param {number} width
 * @param {number} height
 * @param {number} x
 * @param {number} y
 */
export function instanceAt(idMap, width, height, x, y) {
  if (x < 0 || y < 0 || x >= width || y >= height) return -1;
  return idMap[y * width + x];
}

/**
 * Pointer position straight to the instance under it.
 * @returns {{index: number, x: number, y: number} | null} null outside the image; index -1 on background
 */
export function hitTest(idMap, width, height, clientX, clientY, rect) {
  const pixel = pointerToPixel(clientX, clientY, rect, width, height);
  if (!pixel) return null;
  return { index: instanceAt(idMap, width, height, pixel.x, pixel.y), x: pixel.x, y: pixel.y };
}
