import { test } from "node:test";
import assert from "node:assert/strict";

import { stageText } from "../src/jobs.js";

test("stage text follows the job through its states", () => {
  assert.equal(stageText({ state: "queued", queue_position: 3 }), "Number 3 in the queue");
  assert.equal(stageText({ state: "done", instance_count: 2, classes: ["cat", "dog"] }), "2 objects found: cat, dog");
  assert.equal(stageText({ state: "done", instance_count: 0, classes: [] }), "0 objects found");
  assert.equal(stageText({ state: "failed", error: "The worker ran out of memory." }), "The worker ran out of memory.");
  assert.equal(stageText({ state: "cancelled" }), "Cancelled");
});

test("a running job reads its stage, the overall percent and the time left", () => {
  const job = { state: "running", stage: "model", progress: 0, stage_estimates: { decode: 1, model: 8, masks: 1, saving: 0 }, stage_elapsed_s: 2 };
  assert.equal(stageText(job), "Finding objects… 30% · about 7 s left");
  assert.equal(stageText(job, { fraction: 0.42, secondsLeft: null }), "Finding objects… 42%");
});
