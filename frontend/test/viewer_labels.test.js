import { test } from "node:test";
import assert from "node:assert/strict";

import { hoverLabelPosition, instanceLabel, layoutCaptions } from "../src/viewer/labels.js";

const area = { width: 200, height: 100, captionHeight: 10 };

function inside(rect, { width, height }) {
  return rect.x >= 0 && rect.y >= 0 && rect.x + rect.w <= width && rect.y + rect.h <= height;
}

function overlap(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

test("a caption goes above its box's top-left corner when there is room", () => {
  const placed = layoutCaptions([{ index: 0, box: [50, 40, 90, 80], width: 30 }], area);
  assert.deepEqual(placed.get(0), { x: 50, y: 30, w: 30, h: 10 });
});

test("a box at the image's top edge gets its caption inside the image, not above it", () => {
  const placed = layoutCaptions([{ index: 0, box: [50, 0, 90, 40], width: 30 }], area);
  assert.deepEqual(placed.get(0), { x: 50, y: 0, w: 30, h: 10 });
});

test("a caption wider than the space right of its box is shifted left to stay inside", () => {
  const placed = layoutCaptions([{ index: 0, box: [180, 50, 200, 90], width: 60 }], area);
  assert.ok(inside(placed.get(0), area));
  assert.equal(placed.get(0).x, 140);
});

test("a second caption for the same spot moves to the next free position instead of overlapping", () => {
  const placed = layoutCaptions(
    [
      { index: 0, box: [50, 40, 90, 80], width: 30 },
      { index: 1, box: [52, 42, 92, 82], width: 30 },
    ],
    area,
  );
  assert.equal(placed.size, 2);
  assert.ok(!overlap(placed.get(0), placed.get(1)));
  assert.deepEqual(placed.get(0), { x: 50, y: 30, w: 30, h: 10 }); // the first (highest score) keeps its place
});

test("captions that fit nowhere are left out, never drawn on top of another", () => {
  const tiny = { width: 40, height: 12, captionHeight: 10 };
  const items = [0, 1, 2].map((index) => ({ index, box: [0, 0, 40, 12], width: 35 }));
  const placed = layoutCaptions(items, tiny);
  assert.deepEqual([...placed.keys()], [0]);
});

test("a caption wider or taller than the image is left out", () => {
  assert.equal(layoutCaptions([{ index: 0, box: [0, 0, 10, 10], width: 500 }], area).size, 0);
  assert.equal(layoutCaptions([{ index: 0, box: [0, 0, 10, 10], width: 5 }], { ...area, captionHeight: 200 }).size, 0);
});

test("thirty crowded boxes: every placed caption is inside the image and clear of every other", () => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const big = { width: 390, height: 290, captionHeight: 18, gap: 1 };
  const items = Array.from({ length: 30 }, (_, index) => {
    const x = random() * 350;
    const y = random() * 260;
    return { index, box: [x, y, x + 10 + random() * 80, y + 10 + random() * 60], width: 60 + random() * 40 };
  });
  const placed = [...layoutCaptions(items, big).values()];
  assert.ok(placed.length >= 10, `only ${placed.length} captions placed`);
  for (const [i, a] of placed.entries()) {
    assert.ok(inside(a, big), JSON.stringify(a));
    for (const b of placed.slice(i + 1)) assert.ok(!overlap(a, b), JSON.stringify([a, b]));
  }
});

test("the hover label hangs left of the pointer on the right half of the stage", () => {
  assert.deepEqual(hoverLabelPosition({ x: 10, y: 20 }, 400), { x: 24, y: 34, flip: false });
  assert.deepEqual(hoverLabelPosition({ x: 300, y: 20 }, 400), { x: 286, y: 34, flip: true });
});

test("an instance's caption is its class and score to three places", () => {
  assert.equal(instanceLabel({ class_name: "teddy bear", score: 0.98765 }), "teddy bear 0.988");
});
