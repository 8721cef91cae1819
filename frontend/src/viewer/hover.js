/**
 * Hover and pin: the instance under the pointer (or focused in the list) is drawn alone on the highlight
 * canvas and named by the hover label; a click (or Enter in the list) pins it until Escape or another click.
 *
 * A pointer move reads one entry of the instance-id map and, only when the instance under it changes, clears
 * the previous patch and draws the new one (a canvas of that instance's bounds, prepared once per colouring,
 * in idle time ahead of use), so a move costs the same on any size of photo.
 */
import { cssColor } from "../colors.js";
import { hitTest } from "../hittest.js";
import { stackOrder } from "../rle.js";
import { hoverLabelPosition, instanceLabel } from "./labels.js";
import { drawHighlight, instancePatchCanvas } from "./render.js";

const DIMMED_OPACITY = 0.35;
const HIGHLIGHT_ALPHA = 210;

export class Hover {
  /**
   * @param {import("../viewer.js").Viewer} view the viewer: its canvases, instances, runs, bounds, idMap
   * @param {{onPin: (index: number) => void}} handlers told when the pinned instance changes
   */
  constructor(view, { onPin }) {
    this.view = view;
    this.onPin = onPin;
    this.hovered = -1;
    this.pinned = -1;
    this.shown = -1; // what the highlight canvas currently shows
    this.shownRect = null;
    this.patches = new Map(); // instance index -> canvas of its bounds, in the current colouring
    this.idle = 0;
    const { overlay } = view;
    const signal = view.signal;
    overlay.addEventListener("pointermove", (e) => this.setHovered(this.hit(e), e), { signal });
    overlay.addEventListener("pointerleave", () => this.setHovered(-1), { signal });
    overlay.addEventListener(
      "click",
      (e) => {
        const index = this.hit(e);
        this.setPinned(index >= 0 && index !== this.pinned ? index : -1);
      },
      { signal },
    );
    document.addEventListener("keydown", (e) => e.key === "Escape" && this.setPinned(-1), { signal });
  }

  hit(event) {
    const v = this.view;
    const found = hitTest(v.idMap, v.width, v.height, event.clientX, event.clientY, v.overlay.getBoundingClientRect());
    return found ? found.index : -1;
  }

  setHovered(index, pointer = null) {
    this.hovered = index;
    this.show(pointer);
  }

  setPinned(index) {
    this.pinned = index;
    this.onPin(index);
    this.show();
  }

  /** After a re-render: drop a hover or pin on an instance that is no longer visible, redraw the rest. */
  refresh() {
    if (this.hovered >= 0 && !this.view.isVisible(this.hovered)) this.hovered = -1;
    if (this.pinned >= 0 && !this.view.isVisible(this.pinned)) this.setPinned(-1);
    this.shown = -2; // force a redraw in the current colours
    this.show();
  }

  /** Forget the patches (the colouring changed). */
  recolor() {
    this.patches.clear();
    this.warm();
  }

  /** Highlight the hovered instance, else the pinned one, and place the label. */
  show(pointer = null) {
    const v = this.view;
    const index = this.hovered >= 0 ? this.hovered : this.pinned;
    if (index !== this.shown) {
      const ctx = v.highlight.getContext("2d");
      if (this.shownRect) ctx.clearRect(...this.shownRect);
      this.shownRect = index >= 0 ? drawHighlight(ctx, this.patch(index), v.bounds[index], v.pixelScale()) : null;
      v.dim(index >= 0 ? DIMMED_OPACITY : 1);
      v.stage.classList.toggle("has-selection", this.pinned >= 0);
      this.shown = index;
    }
    this.placeLabel(index, pointer);
  }

  placeLabel(index, pointer) {
    const { label, stage, bounds, width } = this.view;
    if (index < 0) {
      label.hidden = true;
      return;
    }
    const stageRect = stage.getBoundingClientRect();
    const scale = stageRect.width / width;
    const anchor =
      pointer && index === this.hovered
        ? { x: pointer.clientX - stageRect.left, y: pointer.clientY - stageRect.top }
        : { x: bounds[index].x * scale, y: bounds[index].y * scale };
    const text = instanceLabel(this.view.instances[index]);
    if (label.textContent !== text || label.hidden) {
      label.textContent = text;
      label.style.borderColor = cssColor(this.view.color(index));
      label.hidden = false;
    }
    // The CSS percentage shift needs no layout read, which would cost more than the whole move.
    const { x, y, flip } = hoverLabelPosition(anchor, stageRect.width);
    label.style.transform = `translate(${x}px, ${y}px)${flip ? " translateX(-100%)" : ""}`;
  }

  /** The highlight patch of an instance, built on first use. */
  patch(index) {
    let canvas = this.patches.get(index);
    if (!canvas) {
      const v = this.view;
      canvas = instancePatchCanvas(v.runs[index], v.bounds[index], v.color(index), HIGHLIGHT_ALPHA);
      this.patches.set(index, canvas);
    }
    return canvas;
  }

  /**
   * Draw and clear the top instance once, so the highlight canvas' backing store exists before the first
   * pointer move (allocating it then would make the first hover the slowest).
   */
  prime() {
    const v = this.view;
    const top = v.order[0];
    if (top === undefined) return;
    const ctx = v.highlight.getContext("2d");
    ctx.clearRect(...drawHighlight(ctx, this.patch(top), v.bounds[top], v.pixelScale()));
    ctx.getImageData(0, 0, 1, 1); // make the browser carry the drawing out now
  }

  /** Build the patches in idle time, top instances first, so the first hover is as fast as later ones. */
  warm() {
    const v = this.view;
    const queue = stackOrder(v.instances, (i) => v.bounds[i] !== null);
    const step = (deadline) => {
      while (queue.length && deadline.timeRemaining() > 2) this.patch(queue.shift());
      this.idle = queue.length ? requestIdle(step) : 0;
    };
    cancelIdle(this.idle);
    this.idle = requestIdle(step);
  }

  /** Stop idle work (listeners go with the viewer's AbortSignal). */
  destroy() {
    cancelIdle(this.idle);
    this.idle = 0;
    this.patches.clear();
  }
}

function requestIdle(fn) {
  return window.requestIdleCallback ? window.requestIdleCallback(fn) : setTimeout(() => fn({ timeRemaining: () => 8 }), 16);
}

function cancelIdle(handle) {
  if (!handle) return;
  if (window.cancelIdleCallback) window.cancelIdleCallback(handle);
  else clearTimeout(handle);
}
