import { test } from "node:test";
import assert from "node:assert/strict";

import { classColor, instanceColor } from "../src/colors.js";
import { DEFAULT_SETTINGS, SETTING_EFFECT } from "../src/viewer/controls.js";
import { downloadName, downloadScale } from "../src/viewer/downloads.js";
import { legendEntries, summaryText } from "../src/viewer/legend_entries.js";

const instances = [
  { class_name: "dog", class_id: 18, score: 0.9 },
  { class_name: "cat", class_id: 17, score: 0.8 },
  { class_name: "dog", class_id: 18, score: 0.3 },
];

test("legend: one entry per class, most frequent first, counting only scores above the threshold", () => {
  const all = legendEntries(instances, { threshold: 0, coloring: "instance" }, new Set());
  assert.deepEqual(
    all.map(({ name, count, shown }) => [name, count, shown]),
    [
      ["dog", 2, true],
      ["cat", 1, true],
    ],
  );
  const high = legendEntries(instances, { threshold: 0.5, coloring: "instance" }, new Set());
  assert.deepEqual(
    high.map(({ name, count }) => [name, count]),
    [
      ["cat", 1],
      ["dog", 1],
    ],
  );
});

test("legend: a hidden class stays listed, switched off, even when nothing of it passes the threshold", () => {
  const entries = legendEntries(instances, { threshold: 0.95, coloring: "instance" }, new Set(["dog"]));
  assert.deepEqual(entries, [{ name: "dog", count: 0, color: null, shown: false }]);
});

test("legend swatches follow the colouring: first instance's colour, or the class colour", () => {
  const byObject = legendEntries(instances, { threshold: 0, coloring: "instance" }, new Set());
  assert.deepEqual(byObject.find((e) => e.name === "cat").color, instanceColor(1));
  const byClass = legendEntries(instances, { threshold: 0, coloring: "semantic" }, new Set());
  assert.deepEqual(byClass.find((e) => e.name === "cat").color, classColor(17));
  assert.deepEqual(byClass.find((e) => e.name === "dog").color, classColor(18));
});

test("summary counts shown objects of all", () => {
  assert.equal(summaryText(2, 3, 640, 480), "2 of 3 objects shown · 640×480");
  assert.equal(summaryText(1, 1, 10, 10), "1 of 1 object shown · 10×10");
});

test("every setting says what its change invalidates", () => {
  assert.deepEqual(Object.keys(SETTING_EFFECT).sort(), Object.keys(DEFAULT_SETTINGS).sort());
  for (const effect of Object.values(SETTING_EFFECT)) assert.ok(["map", "paint", "compose"].includes(effect));
  assert.equal(SETTING_EFFECT.threshold, "map");
  assert.equal(SETTING_EFFECT.coloring, "paint");
});

test("download names carry the upload's name, and the cut-out its index and class", () => {
  assert.equal(downloadName("street", "overlay"), "street-overlay.png");
  assert.equal(downloadName("street", "json"), "street-result.json");
  assert.equal(downloadName("street", "cutout", { class_name: "teddy bear" }, 4), "street-4-teddy_bear.png");
});

test("downloads draw lines and captions as on a 1000-pixel-wide display, never thinner than one pixel", () => {
  assert.equal(downloadScale(640), 1);
  assert.equal(downloadScale(4000), 4);
});
