/**
 * The viewer's display controls: score threshold, mask opacity, boxes, outlines and the colouring mode.
 * Each change is reported as (setting, value); SETTING_EFFECT says how much of the drawing it invalidates.
 */
import { el } from "../dom.js";

/**
 * What a change of each setting makes the viewer redo: "map" (which instances are visible: the instance
 * map, legend and list), "paint" (pixel colours), "compose" (only how the layers are stacked).
 */
export const SETTING_EFFECT = Object.freeze({
  threshold: "map",
  coloring: "paint",
  opacity: "compose",
  boxes: "compose",
  outlines: "compose",
});

export const DEFAULT_SETTINGS = Object.freeze({ threshold: 0, opacity: 0.55, boxes: true, outlines: true, coloring: "instance" });

/**
 * @param {object} settings current values (see DEFAULT_SETTINGS)
 * @param {{onChange: (key: string, value: number | boolean | string) => void, signal: AbortSignal}} handlers
 * @returns {HTMLElement[]} the controls, in display order
 */
export function buildDisplayControls(settings, { onChange, signal }) {
  const slider = (label, key, testid, step) => {
    const input = el("input", { type: "range", min: 0, max: 1, step, value: settings[key], dataset: { testid }, "aria-label": label });
    const out = el("output", {}, String(settings[key]));
    input.addEventListener(
      "input",
      () => {
        out.textContent = input.value;
        onChange(key, Number(input.value));
      },
      { signal },
    );
    return el("label", { class: "slider" }, el("span", {}, label), input, out);
  };
  const toggle = (label, key, testid) => {
    const input = el("input", { type: "checkbox", checked: settings[key], dataset: { testid } });
    input.addEventListener("change", () => onChange(key, input.checked), { signal });
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
      const input = el("input", { type: "radio", name: "coloring", value: mode, checked: mode === settings.coloring, dataset: { testid: `coloring-${mode}` } });
      input.addEventListener("change", () => input.checked && onChange("coloring", mode), { signal });
      return el("label", { class: "toggle" }, input, text);
    }),
  );
  return [
    slider("Minimum score", "threshold", "score-slider", 0.01),
    slider("Mask opacity", "opacity", "opacity-slider", 0.05),
    toggle("Boxes", "boxes", "toggle-boxes"),
    toggle("Outlines", "outlines", "toggle-outlines"),
    coloring,
  ];
}
