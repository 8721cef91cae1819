/**
 * Instance captions ("person 0.987") and where they go: inside the image, never on top of one another.
 *
 * Pure geometry, no DOM: the viewer measures text with a canvas and places captions on screen (CSS pixels);
 * the overlay download places them the same way in image pixels.
 */

export function formatScore(score) {
  return score.toFixed(3);
}

/** The caption of one instance: its class name and score, as the hover label and the instance list read. */
export function instanceLabel(instance) {
  return `${instance.class_name} ${formatScore(instance.score)}`;
}

/**
 * Candidate corners for a caption of size w x h beside box [x1, y1, x2, y2], best first: above the box's
 * top-left corner, inside it, below it, then the same on the right side.
 */
function candidates([x1, y1, x2, y2], w, h) {
  return [
    [x1, y1 - h],
    [x1, y1],
    [x1, y2],
    [x1, y2 - h],
    [x2 - w, y1 - h],
    [x2 - w, y1],
    [x2 - w, y2],
    [x2 - w, y2 - h],
  ];
}

function overlaps(a, b, gap) {
  return a.x < b.x + b.w + gap && b.x < a.x + a.w + gap && a.y < b.y + b.h + gap && b.y < a.y + a.h + gap;
}

/**
 * Place captions inside the image without overlaps, greedily in the order given (put the most important
 * first: the viewer passes instances highest score first). A caption goes to the first candidate position
 * beside its box (shifted sideways or up/down to stay inside the image) that clears every caption placed
 * so far; one that fits nowhere is left out (it still shows on hover, on pin and in the instance list).
 *
 * Cost: O(n^2) rectangle tests for n captions (n is at most a few hundred).
 *
 * @param {{index: number, box: number[], width: number}[]} items box [x1, y1, x2, y2] and the caption's width,
 *   both in the same unit as `width`/`height` below
 * @param {{width: number, height: number, captionHeight: number, gap?: number}} area the image's size and
 *   the caption height in that unit; `gap` is the space kept between captions
 * @returns {Map<number, {x: number, y: number, w: number, h: number}>} index -> placed rectangle
 */
export function layoutCaptions(items, { width, height, captionHeight: h, gap = 1 }) {
  const placed = new Map();
  const taken = [];
  for (const { index, box, width: w } of items) {
    if (!(w > 0) || w > width || h > height) continue;
    for (const [cx, cy] of candidates(box, w, h)) {
      const rect = { x: clamp(cx, 0, width - w), y: clamp(cy, 0, height - h), w, h };
      if (taken.some((other) => overlaps(rect, other, gap))) continue;
      taken.push(rect);
      placed.set(index, rect);
      break;
    }
  }
  return placed;
}

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

/**
 * Where the hover label goes, in stage pixels: beside the pointer (or at the pinned instance's top-left), on
 * the pointer's left in the right half of the stage so that it never widens the page (phones).
 * @param {{x: number, y: number}} anchor stage pixels
 * @param {number} stageWidth
 * @returns {{x: number, y: number, flip: boolean}} flip: the label's right edge is at x
 */
export function hoverLabelPosition(anchor, stageWidth, offset = 14) {
  const flip = anchor.x > stageWidth / 2;
  return { x: Math.round(flip ? anchor.x - offset : anchor.x + offset), y: Math.round(anchor.y + offset), flip };
}
