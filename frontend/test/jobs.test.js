import { test } from "node:test";
import assert from "node:assert/strict";

import { progressOf, stageText } from "../src/jobs.js";

test("stage text follows the job through its states", () => {
  assert.equal(stageText({ state: "queued", queue_position: 3 }), "Number 3 in the queue");
  assert.equal(stageText({ state: "running", stage: "model", progress: 0.42 }), "Finding objects… 42%");
  assert.equal(stageText({ state: "done", instance_count: 2, classes: ["cat", "dog"] }), "2 objects found: cat, dog");
  assert.equal(stageText({ state: "done", instance_count: 0, classes: [] }), "0 objects found");
  assert.equal(stageText({ state: "failed", error: "The worker ran out of memory." }), "The worker ran out of memory.");
  assert.equal(stageText({ state: "cancelled" }), "Cancelled");
});

test("progress is full when done and empty while queued", () => {
  assert.equal(progressOf({ state: "done", progress: 0.2 }), 1);
  assert.equal(progressOf({ state: "queued", progress: 0.5 }), 0);
  assert.equal(progressOf({ state: "running", progress: 0.5 }), 0.5);
  assert.equal(progressOf({ state: "running", progress: 7 }), 1);
});
