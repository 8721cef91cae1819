import { test } from "node:test";
import assert from "node:assert/strict";

import { instancePatch, paintFill, paintOutlines } from "../src/layers.js";
import { encodeCounts, maskBounds, maskRuns } from "../src/rle.js";

const RED = 0xff0000ff;
const BLUE = 0xffff0000;
const palette = Uint32Array.from([RED, BLUE]);

test("fill paints each pixel with the colour of the instance on top, background transparent", () => {
  const map = Int32Array.from([-1, 0, 1, 1]);
  const out = new Uint32Array(4).fill(7);
  paintFill(map, palette, out);
  assert.deepEqual(Array.from(out), [0, RED, BLUE, BLUE]);
});

test("outlines mark instance pixels that touch another id or the edge, not the inside", () => {
  // 5x5 image with a 3x3 block of instance 0 in the middle.
  const w = 5;
  const map = new Int32Array(25).fill(-1);
  for (let y = 1; y <= 3; y++) for (let x = 1; x <= 3; x++) map[y * w + x] = 0;
  const out = new Uint32Array(25);
  paintOutlines(map, w, 5, palette, out);
  const marked = [];
  for (let p = 0; p < 25; p++) if (out[p]) marked.push(p);
  assert.deepEqual(marked, [6, 7, 8, 11, 13, 16, 17, 18]);
  assert.equal(out[12], 0);
});

test("outlines at the image edge and between touching instances", () => {
  const map = Int32Array.from([0, 0, 1, 1, 0, 0, 1, 1]); // 4x2: two instances side by side
  const out = new Uint32Array(8);
  paintOutlines(map, 4, 2, palette, out);
  assert.deepEqual(Array.from(out), [RED, RED, BLUE, BLUE, RED, RED, BLUE, BLUE]);
});

test("an instance patch holds the instance's own mask inside its bounds", () => {
  // 4 wide, 3 high; the mask covers (1,1), (2,1), (2,2). Column-major runs: 4 zeros, 1 one, 2 zeros, 2 ones, 3 zeros.
  const runs = maskRuns({ size: [3, 4], counts: encodeCounts([4, 1, 2, 2, 3]) });
  const bounds = maskBounds(runs);
  assert.deepEqual(bounds, { x: 1, y: 1, width: 2, height: 2 });
  assert.deepEqual(Array.from(instancePatch(runs, bounds, RED)), [RED, RED, 0, RED]);
});

test("a thick outline covers the disc of its radius around each outline pixel, clipped at the edges", () => {
  const w = 9;
  const map = new Int32Array(81).fill(-1);
  map[4 * w + 4] = 0; // one instance pixel in the middle: its own outline
  const out = new Uint32Array(81);
  paintOutlines(map, w, 9, palette, out, 2);
  const marked = [];
  for (let p = 0; p < 81; p++) if (out[p]) marked.push([p % w, Math.floor(p / w)]);
  assert.equal(marked.length, 13); // the lattice points with dx² + dy² <= 4
  assert.ok(marked.every(([x, y]) => (x - 4) ** 2 + (y - 4) ** 2 <= 4));
  const corner = new Int32Array(81).fill(-1);
  corner[0] = 1;
  paintOutlines(corner, w, 9, palette, out, 2);
  assert.equal(out.filter((v) => v === BLUE).length, 6); // the quarter disc inside the image
});
