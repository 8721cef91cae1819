/** What the legend lists, without the DOM: one entry per class, its count, colour and whether it is shown. */
import { colorOf } from "../colors.js";

/**
 * @param {{class_name: string, class_id: number, score: number}[]} instances the result's instances
 * @param {{threshold: number, coloring: "instance" | "semantic"}} settings
 * @param {Set<string>} hiddenClasses classes switched off in the legend
 * @returns {{name: string, count: number, color: number[] | null, shown: boolean}[]} most frequent first, then
 *   by name; a hidden class with no instance above the threshold stays listed (count 0, colour null) so it
 *   can be switched back on. The colour is the one the masks get: the class's in semantic colouring, its
 *   first instance's otherwise.
 */
export function legendEntries(instances, settings, hiddenClasses) {
  const byName = new Map();
  instances.forEach((inst, i) => {
    if (inst.score < settings.threshold) return;
    const entry = byName.get(inst.class_name) || { count: 0, first: i };
    entry.count += 1;
    byName.set(inst.class_name, entry);
  });
  for (const name of hiddenClasses) if (!byName.has(name)) byName.set(name, { count: 0, first: -1 });
  return [...byName.entries()]
    .sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0]))
    .map(([name, { count, first }]) => ({
      name,
      count,
      color: first >= 0 ? colorOf(instances[first], first, settings.coloring) : null,
      shown: !hiddenClasses.has(name),
    }));
}

/** "3 of 5 objects shown · 640×480" */
export function summaryText(visible, total, width, height) {
  return `${visible} of ${total} object${total === 1 ? "" : "s"} shown · ${width}×${height}`;
}
