import { test } from "node:test";
import assert from "node:assert/strict";

import { hitTest, instanceAt, pointerToPixel } from "../src/hittest.js";

// A 4000x3000 image shown at 800x600 CSS pixels, its top-left corner at (100, 50) in the viewport.
const rect = { left: 100, top: 50, width: 800, height: 600 };

test("pointer positions map through the display scale to image pixels", () => {
  assert.deepEqual(pointerToPixel(100, 50, rect, 4000, 3000), { x: 0, y: 0 });
  assert.deepEqual(pointerToPixel(100.19, 50.19, rect, 4000, 3000), { x: 0, y: 0 });
  assert.deepEqual(pointerToPixel(100.2, 50.2, rect, 4000, 3000), { x: 1, y: 1 });
  assert.deepEqual(pointerToPixel(500, 350, rect, 4000, 3000), { x: 2000, y: 1500 });
  assert.deepEqual(pointerToPixel(899.99, 649.99, rect, 4000, 3000), { x: 3999, y: 2999 });
});

test("outside the displayed image there is no pixel", () => {
  assert.equal(pointerToPixel(99.9, 60, rect, 4000, 3000), null);
  assert.equal(pointerToPixel(900, 60, rect, 4000, 3000), null);
  assert.equal(pointerToPixel(200, 650, rect, 4000, 3000), null);
  assert.equal(pointerToPixel(200, 60, { ...rect, width: 0 }, 4000, 3000), null);
});

test("upscaled small images: several CSS pixels per image pixel", () => {
  const small = { left: 0, top: 0, width: 400, height: 300 };
  assert.deepEqual(pointerToPixel(99, 99, small, 4, 3), { x: 0, y: 0 });
  assert.deepEqual(pointerToPixel(100, 100, small, 4, 3), { x: 1, y: 1 });
});

test("the instance under the pointer is read from the id map per pixel, not from boxes", () => {
  // 4x3 image: instance 0 is an L shape whose box covers the whole image; instance 1 fills the L's notch.
  const map = Int32Array.from([0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0]);
  const display = { left: 0, top: 0, width: 40, height: 30 };
  assert.equal(hitTest(map, 4, 3, 5, 5, display).index, 0);
  assert.equal(hitTest(map, 4, 3, 25, 5, display).index, 1);
  assert.equal(hitTest(map, 4, 3, 35, 25, display).index, 0);
  assert.deepEqual(hitTest(map, 4, 3, 35, 15, display), { index: 1, x: 3, y: 1 });
  assert.equal(hitTest(map, 4, 3, 45, 15, display), null);
});

test("background and out-of-range pixels are -1", () => {
  const map = Int32Array.from([-1, 2, -1, -1]);
  assert.equal(instanceAt(map, 2, 2, 0, 0), -1);
  assert.equal(instanceAt(map, 2, 2, 1, 0), 2);
  assert.equal(instanceAt(map, 2, 2, 2, 0), -1);
  assert.equal(instanceAt(map, 2, 2, 0, -1), -1);
});
