/**
 * Drawing the overlay: mask fills and outlines painted once per colouring into canvases at the photo's
 * resolution, then composed with opacity, dashed boxes and captions; and the highlight of one instance.
 *
 * Line widths and caption sizes are given in screen pixels and multiplied by `scale` (image pixels per screen
 * pixel), so they read the same whatever size the photo is shown at, and in the full-size download.
 */
import { cssColor, packRgba } from "../colors.js";
import { instancePatch, paintFill, paintOutlines } from "../layers.js";
import { instanceLabel, layoutCaptions } from "./labels.js";

/** Caption text size and padding in screen pixels; style.css's `.caption` says the same. */
export const CAPTION_FONT_PX = 12;
export const CAPTION_PAD_PX = 3;
const CAPTION_FONT = "system-ui, sans-serif";

export function newCanvas(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

/** An RGBA word array as a canvas of the given size. */
export function wordsToCanvas(words, width, height) {
  const canvas = newCanvas(width, height);
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(words.buffer), width, height), 0, 0);
  return canvas;
}

/**
 * Paint fills and outlines of the visible instances (the instance map) into two canvases of image size.
 * @param {{width, height, idMap: Int32Array, count: number, color: (i) => number[]}} view
 * @param {{fill?: HTMLCanvasElement, outline?: HTMLCanvasElement}} layers reused between paints
 * @param {number} outlineRadius outline half-width in image pixels
 */
export function paintLayers(view, layers, outlineRadius) {
  const { width, height, idMap } = view;
  const palette = new Uint32Array(view.count);
  for (let i = 0; i < palette.length; i++) palette[i] = packRgba(view.color(i), 255);
  layers.fill ??= newCanvas(width, height);
  layers.outline ??= newCanvas(width, height);
  const pixels = new ImageData(width, height);
  const words = new Uint32Array(pixels.data.buffer);
  paintFill(idMap, palette, words);
  layers.fill.getContext("2d").putImageData(pixels, 0, 0);
  paintOutlines(idMap, width, height, palette, words, outlineRadius);
  layers.outline.getContext("2d").putImageData(pixels, 0, 0);
  return layers;
}

/**
 * Captions of the visible instances laid out inside the image without overlaps (highest score first).
 * @param {{width, height, instances, order: number[]}} view order: visible instances, top first
 * @param {number} scale image pixels per screen pixel; the layout is in `unit` pixels
 * @param {number} unit pixels of the layout per image pixel (1 for the image itself, 1/scale for the screen)
 * @returns {Map<number, {x, y, w, h, text, font}>} index -> caption rectangle in layout pixels
 */
export function placeCaptions(view, scale, unit = 1) {
  const size = CAPTION_FONT_PX * scale * unit;
  const pad = CAPTION_PAD_PX * scale * unit;
  const font = `${size}px ${CAPTION_FONT}`;
  const ctx = measuringContext();
  ctx.font = font;
  const texts = new Map();
  const items = view.order.map((index) => {
    const text = instanceLabel(view.instances[index]);
    texts.set(index, text);
    return { index, box: view.instances[index].box.map((v) => v * unit), width: Math.ceil(ctx.measureText(text).width + 2 * pad) };
  });
  const placed = layoutCaptions(items, { width: view.width * unit, height: view.height * unit, captionHeight: Math.ceil(size + 2 * pad) });
  for (const [index, rect] of placed) Object.assign(rect, { text: texts.get(index), font, pad });
  return placed;
}

let measuring = null;
function measuringContext() {
  measuring ??= newCanvas(1, 1).getContext("2d");
  return measuring;
}

/**
 * Draw fills, outlines and boxes (and, for the download, the captions) onto a context of image size. Draws
 * over what the context holds: the viewer clears its overlay first, the download draws the photo first.
 * @param {{width, height, settings, order, instances, color}} view
 * @param {{fill, outline}} layers from paintLayers
 * @param {number} scale image pixels per screen pixel
 * @param {Map|null} captions from placeCaptions in image pixels, or null to leave captions to the page
 */
export function drawOverlay(ctx, view, layers, scale, captions = null) {
  const { settings } = view;
  ctx.save();
  ctx.globalAlpha = settings.opacity;
  ctx.drawImage(layers.fill, 0, 0);
  ctx.globalAlpha = 1;
  if (settings.outlines) ctx.drawImage(layers.outline, 0, 0);
  if (settings.boxes) {
    const line = Math.max(1, 1.5 * scale);
    ctx.lineWidth = line;
    for (const i of view.order) {
      const [x1, y1, x2, y2] = view.instances[i].box;
      ctx.strokeStyle = cssColor(view.color(i));
      ctx.setLineDash([4 * scale, 3 * scale]);
      ctx.strokeRect(x1 + line / 2, y1 + line / 2, x2 - x1 - line, y2 - y1 - line);
    }
    ctx.setLineDash([]);
    if (captions) drawCaptions(ctx, captions, view);
  }
  ctx.restore();
}

function drawCaptions(ctx, captions, view) {
  ctx.textBaseline = "top";
  for (const [index, { x, y, w, h, text, font, pad }] of captions) {
    ctx.fillStyle = "rgba(0, 0, 0, 0.65)";
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = cssColor(view.color(index));
    ctx.fillRect(x, y, Math.max(1, pad), h);
    ctx.fillStyle = "#fff";
    ctx.font = font;
    ctx.fillText(text, x + pad, y + pad);
  }
}

/** A canvas of the instance's bounds holding only its mask in one colour (the highlight patch). */
export function instancePatchCanvas(runs, bounds, rgb, alpha) {
  return wordsToCanvas(instancePatch(runs, bounds, packRgba(rgb, alpha)), bounds.width, bounds.height);
}

/** Draw one instance's highlight; returns the rectangle it covered, for clearing on the next change. */
export function drawHighlight(ctx, patch, bounds, scale) {
  ctx.drawImage(patch, bounds.x, bounds.y);
  const line = Math.max(2, 2.5 * scale);
  ctx.lineWidth = line;
  ctx.strokeStyle = "#fff";
  ctx.strokeRect(bounds.x - line / 2, bounds.y - line / 2, bounds.width + line, bounds.height + line);
  const m = Math.ceil(line) + 1;
  return [bounds.x - m, bounds.y - m, bounds.width + 2 * m, bounds.height + 2 * m];
}
