/**
 * The result viewer: the photo with every instance's mask drawn on a canvas at the image's own resolution,
 * scaled by CSS to exactly cover the displayed photo.
 *
 * Layers, bottom to top: the <img>; the overlay canvas (data-testid=overlay: mask fills, outlines, boxes and
 * captions, redrawn only when a setting changes); the highlight canvas (only the hovered or pinned instance).
 * A pointer move looks the pixel up in the instance-id map and, when the instance under it changes, clears
 * the previous patch and draws the new one, a canvas of the instance's own bounds prepared once. No pass
 * over the whole image happens on a pointer move, so hover cost does not grow with image size.
 */
import { colorOf, cssColor, packRgba } from "./colors.js";
import { baseName, canvasToPng, downloadBlob, el } from "./dom.js";
import { hitTest } from "./hittest.js";
import { instancePatch, paintFill, paintOutlines } from "./layers.js";
import { buildInstanceMap, maskBounds, maskRuns, stackOrder } from "./rle.js";

const DIMMED_OPACITY = 0.35;
const HIGHLIGHT_ALPHA = 210;

function newCanvas(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

export function formatScore(score) {
  return score.toFixed(3);
}

export function instanceLabel(instance) {
  return `${instance.class_name} ${formatScore(instance.score)}`;
}

export class Viewer {
  /**
   * @param {HTMLElement} root container to fill
   * @param {object} options
   * @param {{width: number, height: number, instances: object[]}} options.result the result JSON
   * @param {string} options.imageUrl the original photo
   * @param {string} [options.filename] upload name, for download file names
   */
  constructor(root, { result, imageUrl, filename = "image" }) {
    this.root = root;
    this.result = result;
    this.width = result.width;
    this.height = result.height;
    this.instances = result.instances;
    this.filename = baseName(filename);
    this.settings = { threshold: 0, opacity: 0.55, boxes: true, outlines: true, coloring: "instance" };
    this.hiddenClasses = new Set();
    this.hovered = -1;
    this.pinned = -1;
    this.shown = -1; // what the highlight canvas currently shows
    this.shownRect = null;
    this.patches = new Map(); // instance index -> canvas of its bounds, in the current colouring
    this.pendingRender = 0;

    this.runs = this.instances.map((inst) => maskRuns(inst.mask));
    this.bounds = this.runs.map((r) => maskBounds(r));
    this.build(imageUrl);
    this.ready = new Promise((resolve, reject) => {
      this.image.addEventListener("load", () => {
        this.render();
        this.primeHighlight();
        this.warmPatches();
        resolve(this);
      });
      this.image.addEventListener("error", () => reject(new Error("The image could not be loaded.")));
    });
  }

  // ---- visibility -------------------------------------------------------------------------------------

  isVisible(index) {
    const inst = this.instances[index];
    return inst.score >= this.settings.threshold && !this.hiddenClasses.has(inst.class_name) && this.bounds[index] !== null;
  }

  color(index) {
    return colorOf(this.instances[index], index, this.settings.coloring);
  }

  // ---- DOM ----------------------------------------------------------------------------------------------

  build(imageUrl) {
    const { width, height } = this;
    this.image = el("img", { class: "stage-image", src: imageUrl, alt: "Uploaded photo", width, height, dataset: { testid: "result-image" } });
    this.overlay = newCanvas(width, height);
    this.overlay.className = "overlay";
    this.overlay.dataset.testid = "overlay";
    this.overlay.setAttribute("role", "img");
    this.overlay.setAttribute("aria-label", `${this.instances.length} objects found; the list of instances below can be browsed with Tab`);
    this.highlight = newCanvas(width, height);
    this.highlight.className = "highlight";
    this.highlight.setAttribute("aria-hidden", "true");
    this.label = el("div", { class: "hover-label", dataset: { testid: "hover-label" }, hidden: true, role: "status" });
    this.stage = el("div", { class: "stage" }, this.image, this.overlay, this.highlight, this.label);
    // As wide as the column allows while the whole photo stays within 82% of the window's height.
    this.stage.style.width = `min(100%, ${((82 * width) / height).toFixed(3)}vh)`;

    this.overlay.addEventListener("pointermove", (e) => this.onPointerMove(e));
    this.overlay.addEventListener("pointerleave", () => this.setHovered(-1));
    this.overlay.addEventListener("click", (e) => this.onClick(e));

    this.legend = el("ul", { class: "legend", "aria-label": "Classes" });
    this.instanceList = el("ol", { class: "instance-list", "aria-label": "Instances" });
    this.summary = el("p", { class: "summary" });

    const slider = (label, testid, min, max, step, value, onInput) => {
      const input = el("input", { type: "range", min, max, step, value, dataset: { testid }, "aria-label": label });
      const out = el("output", {}, String(value));
      input.addEventListener("input", () => {
        out.textContent = input.value;
        onInput(Number(input.value));
      });
      return el("label", { class: "slider" }, el("span", {}, label), input, out);
    };
    const toggle = (label, key, testid) => {
      const input = el("input", { type: "checkbox", checked: this.settings[key], dataset: { testid } });
      input.addEventListener("change", () => {
        this.settings[key] = input.checked;
        this.scheduleRender("compose");
      });
      return el("label", { class: "toggle" }, input, label);
    };
    const coloring = el(
      "fieldset",
      { class: "coloring" },
      el("legend", {}, "Colouring"),
      ...[
        ["instance", "One colour per object"],
        ["semantic", "One colour per class"],
      ].map(([mode, text]) => {
        const input = el("input", { type: "radio", name: "coloring", value: mode, checked: mode === this.settings.coloring, dataset: { testid: `coloring-${mode}` } });
        input.addEventListener("change", () => {
          if (!input.checked) return;
          this.settings.coloring = mode;
          this.patches.clear();
          this.scheduleRender("paint");
        });
        return el("label", { class: "toggle" }, input, text);
      }),
    );

    this.cutoutButton = el("button", { type: "button", disabled: true, dataset: { testid: "download-cutout" }, onclick: () => this.downloadCutout() }, "Cut-out PNG");
    const downloads = el(
      "div",
      { class: "downloads" },
      el("button", { type: "button", dataset: { testid: "download-overlay" }, onclick: () => this.downloadOverlay() }, "Overlay PNG"),
      el("button", { type: "button", dataset: { testid: "download-json" }, onclick: () => this.downloadJson() }, "Result JSON"),
      this.cutoutButton,
    );

    const controls = el(
      "aside",
      { class: "controls" },
      this.summary,
      el("h2", {}, "Classes"),
      this.legend,
      el("h2", {}, "Display"),
      slider("Minimum score", "score-slider", 0, 1, 0.01, this.settings.threshold, (v) => {
        this.settings.threshold = v;
        this.scheduleRender("map");
      }),
      slider("Mask opacity", "opacity-slider", 0, 1, 0.05, this.settings.opacity, (v) => {
        this.settings.opacity = v;
        this.scheduleRender("compose");
      }),
      toggle("Boxes", "boxes", "toggle-boxes"),
      toggle("Outlines", "outlines", "toggle-outlines"),
      coloring,
      el("h2", {}, "Download"),
      downloads,
      el("h2", {}, "Instances"),
      this.instanceList,
    );
    this.root.replaceChildren(el("div", { class: "viewer" }, el("div", { class: "stage-wrap" }, this.stage), controls));
    this.resizeObserver = new ResizeObserver(() =>
      this.scheduleRender(this.outlineRadius === this.wantedOutlineRadius() ? "compose" : "paint"),
    );
    this.resizeObserver.observe(this.overlay);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.setPinned(-1);
    });
  }

  // ---- rendering ----------------------------------------------------------------------------------------

  /** Coalesce setting changes into one render per frame. level: "compose" < "paint" < "map". */
  scheduleRender(level) {
    if (!this.idMap) return; // the first render happens when the photo has loaded
    const rank = { compose: 1, paint: 2, map: 3 }[level];
    this.pendingRender = Math.max(this.pendingRender, rank);
    if (this.renderRequested) return;
    this.renderRequested = true;
    requestAnimationFrame(() => {
      this.renderRequested = false;
      const pending = this.pendingRender;
      this.pendingRender = 0;
      this.render(pending);
    });
  }

  /** Rebuild what a change needs: 3 = instance map (visibility), 2 = pixel layers (colours), 1 = compose. */
  render(level = 3) {
    const started = performance.now();
    if (level >= 3) {
      this.order = stackOrder(this.instances, (i) => this.isVisible(i));
      this.idMap = buildInstanceMap(this.width, this.height, this.runs, this.order);
      if (this.pinned >= 0 && !this.isVisible(this.pinned)) this.setPinned(-1);
      if (this.hovered >= 0 && !this.isVisible(this.hovered)) this.hovered = -1;
      this.renderLegend();
      this.renderInstanceList();
    }
    const mapped = performance.now();
    if (level >= 2) this.paintLayers();
    const painted = performance.now();
    this.compose();
    performance.measure("maskweb:map", { start: started, end: mapped });
    performance.measure("maskweb:paint", { start: mapped, end: painted });
    performance.measure("maskweb:compose", { start: painted, end: performance.now() });
    this.shown = -2; // force the highlight to redraw with current colours
    this.showHighlight();
    performance.measure(`maskweb:render:${level}`, { start: started, end: performance.now() });
    this.renders = (this.renders || 0) + 1;
    this.root.dataset.renders = String(this.renders); // lets tests wait for a setting to take effect
  }

  paintLayers() {
    const { width, height } = this;
    const palette = new Uint32Array(this.instances.length);
    for (let i = 0; i < palette.length; i++) palette[i] = packRgba(this.color(i), 255);
    this.fillCanvas ??= newCanvas(width, height);
    this.outlineCanvas ??= newCanvas(width, height);
    const pixels = new ImageData(width, height);
    const words = new Uint32Array(pixels.data.buffer);
    paintFill(this.idMap, palette, words);
    this.fillCanvas.getContext("2d").putImageData(pixels, 0, 0);
    this.outlineRadius = this.wantedOutlineRadius();
    paintOutlines(this.idMap, width, height, palette, words, this.outlineRadius);
    this.outlineCanvas.getContext("2d").putImageData(pixels, 0, 0);
  }

  /** Outline half-width in image pixels for about one and a half screen pixels of line. */
  wantedOutlineRadius() {
    return Math.max(0, Math.round(this.pixelScale() * 0.75));
  }

  /** Image pixels per CSS pixel: line widths are set in screen pixels so they read the same at any size. */
  pixelScale() {
    const rect = this.overlay.getBoundingClientRect();
    return rect.width > 0 ? this.width / rect.width : 1;
  }

  compose() {
    if (!this.fillCanvas) return; // nothing painted yet (the photo is still loading)
    const ctx = this.overlay.getContext("2d");
    drawOverlay(ctx, this, this.pixelScale());
  }

  // ---- hover, pin, highlight ------------------------------------------------------------------------------

  onPointerMove(event) {
    const hit = hitTest(this.idMap, this.width, this.height, event.clientX, event.clientY, this.overlay.getBoundingClientRect());
    this.setHovered(hit ? hit.index : -1, event);
  }

  onClick(event) {
    const hit = hitTest(this.idMap, this.width, this.height, event.clientX, event.clientY, this.overlay.getBoundingClientRect());
    this.setPinned(hit && hit.index >= 0 && hit.index !== this.pinned ? hit.index : -1);
  }

  setHovered(index, pointer = null) {
    this.hovered = index;
    this.showHighlight(pointer);
  }

  setPinned(index) {
    this.pinned = index;
    this.cutoutButton.disabled = index < 0;
    for (const item of this.instanceList.children) {
      item.firstChild.setAttribute("aria-pressed", String(Number(item.firstChild.dataset.index) === index));
    }
    this.showHighlight();
  }

  /** The instance to highlight: the hovered one, else the pinned one. */
  showHighlight(pointer = null) {
    const index = this.hovered >= 0 ? this.hovered : this.pinned;
    if (index !== this.shown) {
      const ctx = this.highlight.getContext("2d");
      if (this.shownRect) ctx.clearRect(...this.shownRect);
      this.shownRect = null;
      if (index >= 0) this.shownRect = drawHighlight(ctx, this, index, this.pixelScale());
      this.overlay.style.opacity = index >= 0 ? String(DIMMED_OPACITY) : "1";
      this.stage.classList.toggle("has-selection", this.pinned >= 0);
      this.shown = index;
    }
    this.placeLabel(index, pointer);
  }

  placeLabel(index, pointer) {
    if (index < 0) {
      this.label.hidden = true;
      return;
    }
    const stageRect = this.stage.getBoundingClientRect();
    let x;
    let y;
    if (pointer && index === this.hovered) {
      x = pointer.clientX - stageRect.left + 14;
      y = pointer.clientY - stageRect.top + 14;
    } else {
      const b = this.bounds[index];
      const scale = stageRect.width / this.width;
      x = b.x * scale;
      y = b.y * scale;
    }
    const text = instanceLabel(this.instances[index]);
    if (this.label.textContent !== text || this.label.hidden) {
      this.label.textContent = text;
      this.label.style.borderColor = cssColor(this.color(index));
      this.label.hidden = false;
    }
    // On the right half of the photo the label hangs to the left of the point, so it never widens the page
    // (phones); the CSS percentage shift needs no layout read, which would cost more than the whole move.
    const flip = x > stageRect.width / 2 ? " translateX(-100%)" : "";
    if (flip) x -= 28;
    this.label.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)${flip}`;
  }

  /** A canvas of the instance's bounds holding only its mask, built once per colouring. */
  patch(index) {
    let canvas = this.patches.get(index);
    if (!canvas) {
      const b = this.bounds[index];
      const words = instancePatch(this.runs[index], b, packRgba(this.color(index), HIGHLIGHT_ALPHA));
      canvas = newCanvas(b.width, b.height);
      canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(words.buffer), b.width, b.height), 0, 0);
      this.patches.set(index, canvas);
    }
    return canvas;
  }

  /**
   * Draw and clear the top instance once, so the highlight canvas' backing store exists before the first
   * pointer move (allocating it then would make the first hover the slowest).
   */
  primeHighlight() {
    const top = this.order[0];
    if (top === undefined) return;
    const ctx = this.highlight.getContext("2d");
    const rect = drawHighlight(ctx, this, top, this.pixelScale());
    ctx.clearRect(...rect);
    ctx.getImageData(0, 0, 1, 1); // make the browser carry the drawing out now
  }

  /** Build the highlight patches in idle time, top instances first, so the first hover is as fast as later ones. */
  warmPatches() {
    const queue = stackOrder(this.instances, (i) => this.bounds[i] !== null);
    const idle = window.requestIdleCallback || ((fn) => setTimeout(() => fn({ timeRemaining: () => 8 }), 16));
    const step = (deadline) => {
      while (queue.length && deadline.timeRemaining() > 2) this.patch(queue.shift());
      if (queue.length) idle(step);
    };
    idle(step);
  }

  // ---- legend and keyboard list ---------------------------------------------------------------------------

  renderLegend() {
    const counts = new Map();
    for (let i = 0; i < this.instances.length; i++) {
      const inst = this.instances[i];
      if (inst.score < this.settings.threshold) continue;
      const entry = counts.get(inst.class_name) || { count: 0, classId: inst.class_id, first: i };
      entry.count += 1;
      counts.set(inst.class_name, entry);
    }
    for (const name of this.hiddenClasses) if (!counts.has(name)) counts.set(name, { count: 0, classId: 0, first: -1 });
    const items = [...counts.entries()].sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0]));
    this.legend.replaceChildren(
      ...items.map(([name, { count, first }]) => {
        const shown = !this.hiddenClasses.has(name);
        const swatch = first >= 0 ? cssColor(colorOf(this.instances[first], first, this.settings.coloring)) : "transparent";
        return el(
          "li",
          {},
          el(
            "button",
            {
              type: "button",
              class: "legend-item",
              "aria-pressed": String(shown),
              title: shown ? `Hide ${name}` : `Show ${name}`,
              dataset: { testid: "legend-item", className: name },
              onclick: () => {
                if (shown) this.hiddenClasses.add(name);
                else this.hiddenClasses.delete(name);
                this.scheduleRender("map");
              },
            },
            el("span", { class: "swatch", style: { background: swatch } }),
            el("span", { class: "legend-name" }, name),
            el("span", { class: "legend-count" }, String(count)),
          ),
        );
      }),
    );
    if (!this.instances.length) this.legend.replaceChildren(el("li", { class: "empty" }, "No objects were found in this photo."));
    const visible = this.order.length;
    this.summary.textContent = `${visible} of ${this.instances.length} object${this.instances.length === 1 ? "" : "s"} shown · ${this.width}×${this.height}`;
  }

  renderInstanceList() {
    this.instanceList.replaceChildren(
      ...this.order
        .slice()
        .sort((a, b) => a - b)
        .map((i) =>
          el(
            "li",
            {},
            el(
              "button",
              {
                type: "button",
                class: "instance-item",
                "aria-pressed": String(i === this.pinned),
                dataset: { index: i, testid: "instance-item" },
                onfocus: () => this.setHovered(i),
                onblur: () => this.setHovered(-1),
                onmouseenter: () => this.setHovered(i),
                onmouseleave: () => this.setHovered(-1),
                onclick: () => this.setPinned(i === this.pinned ? -1 : i),
              },
              el("span", { class: "swatch", style: { background: cssColor(this.color(i)) } }),
              instanceLabel(this.instances[i]),
            ),
          ),
        ),
    );
  }

  // ---- downloads ------------------------------------------------------------------------------------------

  async downloadOverlay() {
    const canvas = newCanvas(this.width, this.height);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(this.image, 0, 0, this.width, this.height);
    drawOverlay(ctx, this, Math.max(1, this.width / 1000));
    downloadBlob(await canvasToPng(canvas), `${this.filename}-overlay.png`);
  }

  downloadJson() {
    const blob = new Blob([JSON.stringify(this.result, null, 1)], { type: "application/json" });
    downloadBlob(blob, `${this.filename}-result.json`);
  }

  /** The pinned instance cut out of the photo: its bounds, transparent outside its mask. */
  async downloadCutout() {
    const index = this.pinned;
    if (index < 0) return;
    const b = this.bounds[index];
    const canvas = newCanvas(b.width, b.height);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(this.image, -b.x, -b.y, this.width, this.height);
    ctx.globalCompositeOperation = "destination-in";
    const words = instancePatch(this.runs[index], b, packRgba([0, 0, 0], 255));
    const mask = newCanvas(b.width, b.height);
    mask.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(words.buffer), b.width, b.height), 0, 0);
    ctx.drawImage(mask, 0, 0);
    const name = this.instances[index].class_name.replace(/\W+/g, "_");
    downloadBlob(await canvasToPng(canvas), `${this.filename}-${index}-${name}.png`);
  }
}

/**
 * Draw fills, outlines, boxes and captions for the visible instances onto a context of image size.
 * @param {number} scale image pixels per screen pixel (line widths and fonts are sized in screen pixels)
 */
function drawOverlay(ctx, viewer, scale) {
  const { width, height, settings } = viewer;
  ctx.save();
  ctx.clearRect(0, 0, width, height);
  ctx.globalAlpha = settings.opacity;
  ctx.drawImage(viewer.fillCanvas, 0, 0);
  ctx.globalAlpha = 1;
  if (settings.outlines) ctx.drawImage(viewer.outlineCanvas, 0, 0);
  if (settings.boxes) {
    const line = Math.max(1, 1.5 * scale);
    const font = Math.max(10, Math.round(12 * scale));
    ctx.font = `${font}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    for (const i of viewer.order) {
      const inst = viewer.instances[i];
      const [x1, y1, x2, y2] = inst.box;
      const color = cssColor(viewer.color(i));
      ctx.lineWidth = line;
      ctx.strokeStyle = color;
      ctx.setLineDash([4 * scale, 3 * scale]);
      ctx.strokeRect(x1 + line / 2, y1 + line / 2, x2 - x1 - line, y2 - y1 - line);
      ctx.setLineDash([]);
      const caption = instanceLabel(inst);
      const pad = 2 * scale;
      const textWidth = ctx.measureText(caption).width;
      const ty = y1 >= font + 2 * pad ? y1 - font - 2 * pad : y1;
      ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
      ctx.fillRect(x1, ty, textWidth + 2 * pad, font + 2 * pad);
      ctx.fillStyle = "#fff";
      ctx.fillText(caption, x1 + pad, ty + pad);
    }
  }
  ctx.restore();
}

/** Draw one instance's highlight; returns the rectangle it covered, for clearing on the next change. */
function drawHighlight(ctx, viewer, index, scale) {
  const b = viewer.bounds[index];
  ctx.drawImage(viewer.patch(index), b.x, b.y);
  const line = Math.max(2, 2.5 * scale);
  ctx.lineWidth = line;
  ctx.strokeStyle = "#fff";
  ctx.strokeRect(b.x - line / 2, b.y - line / 2, b.width + line, b.height + line);
  const m = Math.ceil(line) + 1;
  return [b.x - m, b.y - m, b.width + 2 * m, b.height + 2 * m];
}
