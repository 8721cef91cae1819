/**
 * The legend (one button per class: show / hide) and the instance list (one button per visible instance:
 * hover and pin from the keyboard). Both are rebuilt when visibility or colours change; the button that had
 * the focus gets it back, so Enter on a legend class leaves the keyboard where it was.
 */
import { cssColor } from "../colors.js";
import { el } from "../dom.js";
import { instanceLabel } from "./labels.js";

/** Replace a list's items, giving the focus back to the item with the same key if one of them had it. */
function replaceKeepingFocus(list, items, keyOf) {
  const focused = list.contains(document.activeElement) ? keyOf(document.activeElement) : null;
  list.replaceChildren(...items);
  if (focused === null || focused === undefined) return;
  const again = [...list.querySelectorAll("button")].find((b) => keyOf(b) === focused);
  if (again) again.focus({ preventScroll: true });
}

/**
 * @param {HTMLElement} list the legend's <ul>
 * @param {{name: string, count: number, color: number[] | null, shown: boolean}[]} entries from legendEntries
 * @param {{onToggle: (name: string) => void, signal: AbortSignal}} handlers
 */
export function renderLegend(list, entries, { onToggle, signal }) {
  if (!entries.length) {
    list.replaceChildren(el("li", { class: "empty" }, "No objects were found in this photo."));
    return;
  }
  const items = entries.map(({ name, count, color, shown }) =>
    el(
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
          signal,
          onclick: () => onToggle(name),
        },
        el("span", { class: "swatch", style: { background: color ? cssColor(color) : "transparent" } }),
        el("span", { class: "legend-name" }, name),
        el("span", { class: "legend-count" }, String(count)),
      ),
    ),
  );
  replaceKeepingFocus(list, items, (node) => node.dataset?.className ?? null);
}

/**
 * @param {HTMLElement} list the instance list's <ol>
 * @param {number[]} indices visible instances, in result order
 * @param {object} view
 * @param {object[]} view.instances
 * @param {(i: number) => number[]} view.color
 * @param {number} view.pinned
 * @param {{onHover: (i: number) => void, onPin: (i: number) => void, signal: AbortSignal}} handlers
 */
export function renderInstanceList(list, indices, { instances, color, pinned }, { onHover, onPin, signal }) {
  const items = indices.map((i) =>
    el(
      "li",
      {},
      el(
        "button",
        {
          type: "button",
          class: "instance-item",
          "aria-pressed": String(i === pinned),
          dataset: { index: i, testid: "instance-item" },
          signal,
          onfocus: () => onHover(i),
          onblur: () => onHover(-1),
          onmouseenter: () => onHover(i),
          onmouseleave: () => onHover(-1),
          onclick: () => onPin(i),
        },
        el("span", { class: "swatch", style: { background: cssColor(color(i)) } }),
        instanceLabel(instances[i]),
      ),
    ),
  );
  replaceKeepingFocus(list, items, (node) => node.dataset?.index ?? null);
}

/** Mark the pinned instance's button as pressed. */
export function markPinned(list, pinned) {
  for (const button of list.querySelectorAll("button.instance-item")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.index) === pinned));
  }
}
