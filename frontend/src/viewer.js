/**
 * The result viewer: the photo with every instance's mask drawn on a canvas at the image's own resolution,
 * scaled by CSS to exactly cover the displayed photo. This module holds the viewer's state and wires its
 * parts together; each part is a module of its own under viewer/:
 *
 * - controls.js: score threshold, opacity, boxes, outlines, colouring (and what each change invalidates);
 * - render.js: fills, outlines, boxes and captions (labels.js places captions without overlaps);
 * - hover.js: the hovered or pinned instance, its highlight and its label;
 * - legend.js: the class legend and the keyboard-browsable instance list (legend_entries.js: their content);
 * - downloads.js: overlay PNG, result JSON, cut-out PNG.
 *
 * Layers, bottom to top: the <img>; the overlay canvas (data-testid=overlay: fills, outlines, boxes; redrawn
 * only when a setting changes); the captions (HTML, placed inside the image without overlaps); the highlight
 * canvas (only the hovered or pinned instance); the hover label. `destroy()` removes every listener, observer
 * and pending callback, and empties the root.
 */
import { colorOf } from "./colors.js";
import { baseName, el } from "./dom.js";
import { buildInstanceMap, maskBounds, maskRuns, stackOrder } from "./rle.js";
import { buildDisplayControls, DEFAULT_SETTINGS, SETTING_EFFECT } from "./viewer/controls.js";
import { buildDownloads } from "./viewer/downloads.js";
import { Hover } from "./viewer/hover.js";
import { legendEntries, summaryText } from "./viewer/legend_entries.js";
import { markPinned, renderInstanceList, renderLegend } from "./viewer/legend.js";
import { drawOverlay, newCanvas, paintLayers, placeCaptions } from "./viewer/render.js";

const RENDER_RANK = { compose: 1, paint: 2, map: 3 };

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
    this.count = this.instances.length;
    this.filename = baseName(filename);
    this.settings = { ...DEFAULT_SETTINGS };
    this.hiddenClasses = new Set();
    this.layers = {};
    this.order = [];
    this.idMap = null;
    this.pendingRender = 0;
    this.frame = 0;
    this.controller = new AbortController();
    this.signal = this.controller.signal;

    this.runs = this.instances.map((inst) => maskRuns(inst.mask));
    this.bounds = this.runs.map((r) => maskBounds(r));
    this.build(imageUrl);
    this.hover = new Hover(this, {
      onPin: (index) => {
        markPinned(this.instanceList, index);
        this.downloads.setPinned(index);
      },
    });
    this.ready = new Promise((resolve, reject) => {
      const signal = this.signal;
      this.image.addEventListener(
        "load",
        () => {
          this.render();
          this.hover.prime();
          this.hover.warm();
          resolve(this);
        },
        { signal, once: true },
      );
      this.image.addEventListener("error", () => reject(new Error("The image could not be loaded.")), { signal, once: true });
    });
  }

  isVisible(index) {
    const inst = this.instances[index];
    return inst.score >= this.settings.threshold && !this.hiddenClasses.has(inst.class_name) && this.bounds[index] !== null;
  }

  color(index) {
    return colorOf(this.instances[index], index, this.settings.coloring);
  }

  build(imageUrl) {
    const { width, height, signal } = this;
    this.image = el("img", { class: "stage-image", src: imageUrl, alt: "Uploaded photo", width, height, dataset: { testid: "result-image" } });
    this.overlay = newCanvas(width, height);
    this.overlay.className = "overlay";
    this.overlay.dataset.testid = "overlay";
    this.overlay.setAttribute("role", "img");
    this.overlay.setAttribute("aria-label", `${this.count} objects found; the list of instances beside the photo can be browsed with Tab`);
    this.captions = el("div", { class: "captions", "aria-hidden": "true", dataset: { testid: "captions" } });
    this.highlight = newCanvas(width, height);
    this.highlight.className = "highlight";
    this.highlight.setAttribute("aria-hidden", "true");
    this.label = el("div", { class: "hover-label", dataset: { testid: "hover-label" }, hidden: true, role: "status" });
    this.stage = el("div", { class: "viewer-stage" }, this.image, this.overlay, this.captions, this.highlight, this.label);
    // As wide as the column allows while the whole photo stays within 82% of the window's height.
    this.stage.style.width = `min(100%, ${((82 * width) / height).toFixed(3)}vh)`;

    this.legend = el("ul", { class: "legend", "aria-label": "Classes" });
    this.instanceList = el("ol", { class: "instance-list", "aria-label": "Instances" });
    this.summary = el("p", { class: "summary" });
    this.downloads = buildDownloads(this, { signal });
    const display = buildDisplayControls(this.settings, {
      signal,
      onChange: (key, value) => {
        this.settings[key] = value;
        if (key === "coloring") this.hover.recolor();
        this.scheduleRender(SETTING_EFFECT[key]);
      },
    });
    const controls = el(
      "aside",
      { class: "controls", "aria-label": "Display and downloads" },
      this.summary,
      el("h2", {}, "Classes"),
      this.legend,
      el("h2", {}, "Display"),
      ...display,
      el("h2", {}, "Download"),
      this.downloads.node,
      el("h2", {}, "Instances"),
      this.instanceList,
    );
    this.root.replaceChildren(el("div", { class: "viewer" }, el("div", { class: "stage-wrap" }, this.stage), controls));
    this.resizeObserver = new ResizeObserver(() =>
      this.scheduleRender(this.outlineRadius === this.wantedOutlineRadius() ? "compose" : "paint"),
    );
    this.resizeObserver.observe(this.overlay);
  }

  /** Coalesce changes into one render per frame. level: "compose" < "paint" < "map". */
  scheduleRender(level) {
    if (!this.idMap) return; // the first render happens when the photo has loaded
    this.pendingRender = Math.max(this.pendingRender, RENDER_RANK[level]);
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const pending = this.pendingRender;
      this.pendingRender = 0;
      this.render(pending);
    });
  }

  /** Redo what a change needs: 3 = instance map (visibility), 2 = pixel layers (colours), 1 = compose. */
  render(level = 3) {
    const started = performance.now();
    if (level >= 3) {
      this.order = stackOrder(this.instances, (i) => this.isVisible(i));
      this.idMap = buildInstanceMap(this.width, this.height, this.runs, this.order);
    }
    const mapped = performance.now();
    if (level >= 2) {
      this.outlineRadius = this.wantedOutlineRadius();
      paintLayers(this, this.layers, this.outlineRadius);
      this.renderLists(); // the legend's and the list's swatches follow the colouring
    }
    const painted = performance.now();
    this.compose();
    this.hover.refresh();
    performance.measure("maskweb:map", { start: started, end: mapped });
    performance.measure("maskweb:paint", { start: mapped, end: painted });
    performance.measure("maskweb:compose", { start: painted, end: performance.now() });
  }

  renderLists() {
    renderLegend(this.legend, legendEntries(this.instances, this.settings, this.hiddenClasses), {
      signal: this.signal,
      onToggle: (name) => {
        if (this.hiddenClasses.has(name)) this.hiddenClasses.delete(name);
        else this.hiddenClasses.add(name);
        this.scheduleRender("map");
      },
    });
    const visible = this.order.slice().sort((a, b) => a - b);
    renderInstanceList(this.instanceList, visible, { instances: this.instances, color: (i) => this.color(i), pinned: this.hover.pinned }, {
      signal: this.signal,
      onHover: (i) => this.hover.setHovered(i),
      onPin: (i) => this.hover.setPinned(i === this.hover.pinned ? -1 : i),
    });
    this.summary.textContent = summaryText(this.order.length, this.count, this.width, this.height);
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
    if (!this.layers.fill) return; // nothing painted yet (the photo is still loading)
    const ctx = this.overlay.getContext("2d");
    ctx.clearRect(0, 0, this.width, this.height);
    const scale = this.pixelScale();
    drawOverlay(ctx, this, this.layers, scale);
    this.placeCaptions(scale);
  }

  /** Captions as HTML over the photo, in CSS pixels, inside the image and never on top of one another. */
  placeCaptions(scale) {
    if (!this.settings.boxes) {
      this.captions.replaceChildren();
      return;
    }
    const placed = placeCaptions(this, scale, 1 / scale);
    this.captions.replaceChildren(
      ...[...placed].map(([index, { x, y, w, h, text }]) =>
        el("span", { class: "caption", dataset: { index }, style: { left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px`, borderLeftColor: `rgb(${this.color(index).join(", ")})` } }, text),
      ),
    );
  }

  /** Fade the overlay and captions while one instance is highlighted. */
  dim(opacity) {
    this.overlay.style.opacity = String(opacity);
    this.captions.style.opacity = String(opacity);
  }

  /** Remove every listener, observer and pending callback, and empty the root. */
  destroy() {
    this.controller.abort();
    this.resizeObserver.disconnect();
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.hover.destroy();
    this.root.replaceChildren();
  }
}
