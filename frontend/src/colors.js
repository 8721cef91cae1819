/**
 * Colours for the overlay.
 *
 * Instance colouring gives each object its own colour (instance segmentation: two people are two colours);
 * semantic colouring gives each class one colour (semantic segmentation: every person is the same colour).
 * A class keeps its colour across images because it is derived from the class id alone.
 */

const GOLDEN_ANGLE = 137.50776405003785;

/**
 * HSL to RGB.
 * @param {number} h hue, degrees (any real; wrapped to 0..360)
 * @param {number} s saturation 0..1
 * @param {number} l lightness 0..1
 * @returns {[number, number, number]} 0..255 integers
 */
export function hslToRgb(h, s, l) {
  const hue = ((h % 360) + 360) % 360;
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const hp = hue / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  let rgb;
  if (hp < 1) rgb = [c, x, 0];
  else if (hp < 2) rgb = [x, c, 0];
  else if (hp < 3) rgb = [0, c, x];
  else if (hp < 4) rgb = [0, x, c];
  else if (hp < 5) rgb = [x, 0, c];
  else rgb = [c, 0, x];
  const m = l - c / 2;
  return rgb.map((v) => Math.round((v + m) * 255));
}

/**
 * Colour of the n-th object in instance colouring. Successive indices step the hue by the golden angle, so
 * neighbours in the list are far apart on the colour wheel; the lightness cycles through three levels so that
 * indices whose hues come close again still differ.
 * @param {number} index 0-based instance index
 * @returns {[number, number, number]}
 */
export function instanceColor(index) {
  const lightness = [0.5, 0.62, 0.4][index % 3];
  return hslToRgb(index * GOLDEN_ANGLE + 12, 0.85, lightness);
}

/**
 * Colour of a class in semantic colouring: the same for a class id on every image.
 * @param {number} classId model class id (1.. for objects; 0 is background)
 * @returns {[number, number, number]}
 */
export function classColor(classId) {
  const lightness = [0.52, 0.38, 0.64][Math.floor(classId / 7) % 3];
  return hslToRgb(classId * GOLDEN_ANGLE * 3 + 200, 0.8, lightness);
}

/**
 * Colour of one instance under a colouring mode.
 * @param {{class_id: number}} instance
 * @param {number} index the instance's index in the result
 * @param {"instance" | "semantic"} mode
 */
export function colorOf(instance, index, mode) {
  return mode === "semantic" ? classColor(instance.class_id) : instanceColor(index);
}

/** `rgb(...)`/`rgba(...)` CSS text for a colour. */
export function cssColor([r, g, b], alpha = 1) {
  return alpha >= 1 ? `rgb(${r}, ${g}, ${b})` : `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/**
 * A colour packed as one 32-bit RGBA pixel in the platform's byte order (little-endian: 0xAABBGGRR), for
 * writing whole pixels through a Uint32Array view of ImageData.
 */
export function packRgba([r, g, b], alpha = 255) {
  return ((alpha << 24) | (b << 16) | (g << 8) | r) >>> 0;
}
