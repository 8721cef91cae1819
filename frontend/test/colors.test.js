import { test } from "node:test";
import assert from "node:assert/strict";

import { classColor, colorOf, cssColor, hslToRgb, instanceColor, packRgba } from "../src/colors.js";

function distance([r1, g1, b1], [r2, g2, b2]) {
  return Math.hypot(r1 - r2, g1 - g2, b1 - b2);
}

test("hsl primaries", () => {
  assert.deepEqual(hslToRgb(0, 1, 0.5), [255, 0, 0]);
  assert.deepEqual(hslToRgb(120, 1, 0.5), [0, 255, 0]);
  assert.deepEqual(hslToRgb(240, 1, 0.5), [0, 0, 255]);
  assert.deepEqual(hslToRgb(-120, 1, 0.5), [0, 0, 255]);
  assert.deepEqual(hslToRgb(77, 0, 0.5), [128, 128, 128]);
});

test("instance colouring: fifty objects get fifty distinct colours", () => {
  const colors = Array.from({ length: 50 }, (_, i) => instanceColor(i));
  let closest = Infinity;
  for (let i = 0; i < colors.length; i++) {
    for (let j = i + 1; j < colors.length; j++) closest = Math.min(closest, distance(colors[i], colors[j]));
  }
  assert.ok(closest > 12, `two instance colours only ${closest.toFixed(1)} apart`);
  // Neighbours in the list (often adjacent objects of one class) are clearly different.
  for (let i = 0; i + 1 < colors.length; i++) assert.ok(distance(colors[i], colors[i + 1]) > 90, `${i}`);
});

test("semantic colouring: one colour per class, the same on every image, distinct across COCO's 80", () => {
  const a = { class_id: 1 };
  const b = { class_id: 1 };
  assert.deepEqual(colorOf(a, 0, "semantic"), colorOf(b, 17, "semantic"));
  assert.deepEqual(classColor(18), classColor(18));
  const colors = Array.from({ length: 80 }, (_, i) => classColor(i + 1));
  const unique = new Set(colors.map((c) => c.join(",")));
  assert.equal(unique.size, 80);
});

test("instance colouring differs within a class; semantic does not", () => {
  const cat = { class_id: 16 };
  assert.notDeepEqual(colorOf(cat, 0, "instance"), colorOf(cat, 1, "instance"));
  assert.deepEqual(colorOf(cat, 0, "semantic"), colorOf(cat, 1, "semantic"));
});

test("packed pixels are little-endian RGBA words", () => {
  const word = packRgba([1, 2, 3], 255);
  const bytes = new Uint8Array(new Uint32Array([word]).buffer);
  assert.deepEqual(Array.from(bytes), [1, 2, 3, 255]);
  assert.equal(cssColor([1, 2, 3]), "rgb(1, 2, 3)");
  assert.equal(cssColor([1, 2, 3], 0.5), "rgba(1, 2, 3, 0.5)");
});
