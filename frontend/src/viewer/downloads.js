/**
 * Downloads made in the browser from what the viewer shows: the photo with the overlay as drawn (at the
 * photo's full resolution, captions included), the result JSON, and the pinned instance cut out.
 */
import { canvasToPng, downloadBlob, el } from "../dom.js";
import { drawOverlay, instancePatchCanvas, newCanvas, placeCaptions } from "./render.js";

/** File names: `<upload name>-overlay.png`, `<upload name>-result.json`, `<upload name>-<index>-<class>.png`. */
export function downloadName(base, kind, instance = null, index = -1) {
  if (kind === "overlay") return `${base}-overlay.png`;
  if (kind === "json") return `${base}-result.json`;
  return `${base}-${index}-${instance.class_name.replace(/\W+/g, "_")}.png`;
}

/** Image pixels per "screen pixel" in the download: lines and captions as on a 1000-pixel-wide display. */
export function downloadScale(width) {
  return Math.max(1, width / 1000);
}

/** The photo with the overlay on top, at the photo's resolution. */
export function overlayCanvas(view) {
  const canvas = newCanvas(view.width, view.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(view.image, 0, 0, view.width, view.height);
  const scale = downloadScale(view.width);
  drawOverlay(ctx, view, view.layers, scale, placeCaptions(view, scale));
  return canvas;
}

/** The instance's bounds cut out of the photo, transparent outside its mask. */
export function cutoutCanvas(view, index) {
  const b = view.bounds[index];
  const canvas = newCanvas(b.width, b.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(view.image, -b.x, -b.y, view.width, view.height);
  ctx.globalCompositeOperation = "destination-in";
  ctx.drawImage(instancePatchCanvas(view.runs[index], b, [0, 0, 0], 255), 0, 0);
  return canvas;
}

/**
 * The download buttons. The cut-out needs a pinned instance: `setPinned` enables it.
 * @returns {{node: HTMLElement, setPinned: (index: number) => void}}
 */
export function buildDownloads(view, { signal }) {
  let pinned = -1;
  const cutout = el(
    "button",
    {
      type: "button",
      disabled: true,
      dataset: { testid: "download-cutout" },
      signal,
      onclick: async () => {
        if (pinned < 0) return;
        downloadBlob(await canvasToPng(cutoutCanvas(view, pinned)), downloadName(view.filename, "cutout", view.instances[pinned], pinned));
      },
    },
    "Cut-out PNG",
  );
  const node = el(
    "div",
    { class: "downloads" },
    el(
      "button",
      {
        type: "button",
        dataset: { testid: "download-overlay" },
        signal,
        onclick: async () => downloadBlob(await canvasToPng(overlayCanvas(view)), downloadName(view.filename, "overlay")),
      },
      "Overlay PNG",
    ),
    el(
      "button",
      {
        type: "button",
        dataset: { testid: "download-json" },
        signal,
        onclick: () => downloadBlob(new Blob([JSON.stringify(view.result, null, 1)], { type: "application/json" }), downloadName(view.filename, "json")),
      },
      "Result JSON",
    ),
    cutout,
  );
  return {
    node,
    setPinned(index) {
      pinned = index;
      cutout.disabled = index < 0;
      cutout.title = index < 0 ? "Pin an object first (click it, or press Enter on it in the list)" : "";
    },
  };
}
