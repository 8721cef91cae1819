import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import {
  buildInstanceMap,
  decodeCounts,
  decodeMask,
  encodeCounts,
  maskBounds,
  maskRuns,
  stackOrder,
} from "../src/rle.js";

const fixture = JSON.parse(readFileSync(new URL("./fixtures/coco_rle.json", import.meta.url)));

/** Column-major run lengths of a row-major 0/1 mask: the reference encoding, written plainly. */
function runsOf(mask, width, height) {
  const counts = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x];
      if (v !== current) {
        counts.push(run);
        run = 0;
        current = v;
      }
      run++;
    }
  }
  counts.push(run);
  return counts;
}

function rleOf(mask, width, height) {
  return { size: [height, width], counts: encodeCounts(runsOf(mask, width, height)) };
}

function unpackRows(b64, length) {
  const bytes = Buffer.from(b64, "base64");
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
  return out;
}

function seededRandom(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test("decodes pycocotools' strings into the masks pycocotools encoded", () => {
  assert.ok(fixture.cases.length >= 6);
  for (const c of fixture.cases) {
    const [h, w] = c.rle.size;
    const { data, width, height } = decodeMask(c.rle);
    assert.equal(width, w);
    assert.equal(height, h);
    assert.deepEqual(data, unpackRows(c.rows_packbits_b64, h * w), c.name);
    assert.equal(data.reduce((a, b) => a + b, 0), c.area, c.name);
  }
});

test("re-encodes the fixture's counts to the same strings", () => {
  for (const c of fixture.cases) assert.equal(encodeCounts(decodeCounts(c.rle.counts)), c.rle.counts, c.name);
});

test("bounds from runs equal pycocotools' bbox", () => {
  for (const c of fixture.cases) {
    const bounds = maskBounds(maskRuns(c.rle));
    if (c.area === 0) {
      assert.equal(bounds, null);
      continue;
    }
    assert.deepEqual([bounds.x, bounds.y, bounds.width, bounds.height], c.bbox_xywh, c.name);
  }
});

test("random masks survive encode -> decode, in column-major order", () => {
  const random = seededRandom(42);
  for (let trial = 0; trial < 30; trial++) {
    const width = 1 + Math.floor(random() * 70);
    const height = 1 + Math.floor(random() * 50);
    const density = random();
    const mask = new Uint8Array(width * height).map(() => (random() < density ? 1 : 0));
    const decoded = decodeMask(rleOf(mask, width, height));
    assert.deepEqual(decoded.data, mask);
  }
});

test("column-major: a single column is one run, a single row is many", () => {
  const width = 5;
  const height = 4;
  const column = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) column[y * width + 2] = 1;
  assert.deepEqual(runsOf(column, width, height), [8, 4, 8]);
  assert.deepEqual(decodeMask(rleOf(column, width, height)).data, column);
});

test("large counts (a 12-megapixel mask) round-trip", () => {
  const counts = [5_000_000, 2_000_000, 4_999_999, 1];
  assert.deepEqual(decodeCounts(encodeCounts(counts)), counts);
  assert.equal(maskRuns({ size: [3000, 4000], counts: encodeCounts(counts) }).counts.length, 4);
});

test("a string that does not cover the image is rejected", () => {
  assert.throws(() => maskRuns({ size: [4, 4], counts: encodeCounts([3, 2]) }), /covers 5 pixels/);
  assert.throws(() => decodeCounts("0P"), /ends in the middle/);
});

test("the instance map puts the highest score on top where masks overlap", () => {
  const width = 6;
  const height = 4;
  const left = new Uint8Array(width * height);
  const right = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (x < 4) left[y * width + x] = 1;
      if (x >= 2) right[y * width + x] = 1;
    }
  }
  const instances = [
    { score: 0.6, mask: rleOf(right, width, height) },
    { score: 0.9, mask: rleOf(left, width, height) },
  ];
  const runs = instances.map((i) => maskRuns(i.mask));
  const order = stackOrder(instances);
  assert.deepEqual(order, [1, 0]);
  const map = buildInstanceMap(width, height, runs, order);
  assert.deepEqual(Array.from(map.subarray(0, width)), [1, 1, 1, 1, 0, 0]);

  // Hiding the top instance uncovers the one beneath.
  const onlyRight = buildInstanceMap(width, height, runs, stackOrder(instances, (i) => i !== 1));
  assert.deepEqual(Array.from(onlyRight.subarray(0, width)), [-1, -1, 0, 0, 0, 0]);
});

test("equal scores: the lower index is on top", () => {
  const instances = [{ score: 0.5 }, { score: 0.5 }, { score: 0.7 }];
  assert.deepEqual(stackOrder(instances), [2, 0, 1]);
});

test("instance map agrees with every decoded mask on random overlapping instances", () => {
  const random = seededRandom(3);
  const width = 40;
  const height = 30;
  const instances = [];
  for (let n = 0; n < 12; n++) {
    const cx = random() * width;
    const cy = random() * height;
    const r = 3 + random() * 10;
    const mask = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) mask[y * width + x] = (x - cx) ** 2 + (y - cy) ** 2 < r * r ? 1 : 0;
    instances.push({ score: Math.round(random() * 10) / 10, mask: rleOf(mask, width, height), data: mask });
  }
  const order = stackOrder(instances);
  const map = buildInstanceMap(width, height, instances.map((i) => maskRuns(i.mask)), order);
  for (let p = 0; p < width * height; p++) {
    const top = order.find((i) => instances[i].data[p] === 1);
    assert.equal(map[p], top === undefined ? -1 : top, `pixel ${p}`);
  }
});
