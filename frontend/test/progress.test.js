import { test } from "node:test";
import assert from "node:assert/strict";

import { overallProgress, ProgressClock, timeLeftText } from "../src/progress.js";

const estimates = { decode: 1, model: 8, masks: 1, saving: 0 };

test("overall progress weighs each stage by what recent jobs took in it", () => {
  const atModelStart = overallProgress({ state: "running", stage: "model", progress: 0, stage_estimates: estimates, stage_elapsed_s: 0 });
  assert.equal(atModelStart.fraction, 0.1); // decode (1 s of 10) is behind
  assert.equal(atModelStart.secondsLeft, 9);
  const inMasks = overallProgress({ state: "running", stage: "masks", progress: 0.5, stage_estimates: estimates, stage_elapsed_s: 0 });
  assert.equal(inMasks.fraction, 0.95);
});

test("within the model stage, progress advances by time against the estimate, capped before its end", () => {
  const job = { state: "running", stage: "model", progress: 0, stage_estimates: estimates, stage_elapsed_s: 2 };
  assert.equal(overallProgress(job).fraction, 0.3); // (1 + 8 * 2/8) / 10
  assert.equal(overallProgress(job, 2).fraction, 0.5); // the page's own clock runs on between events
  assert.equal(overallProgress(job, 2).secondsLeft, 5);
  const overdue = overallProgress(job, 60);
  assert.equal(overdue.fraction, (1 + 8 * 0.95) / 10);
  assert.equal(overdue.secondsLeft, 1); // the stages after it
});

test("before any job finished there is no time left to show, but the stages still weigh by default", () => {
  const view = overallProgress({ state: "running", stage: "model", progress: 0, stage_estimates: null, stage_elapsed_s: 1 });
  assert.equal(view.secondsLeft, null);
  assert.ok(view.fraction > 0 && view.fraction < 0.5);
});

test("queued is empty, done is full", () => {
  assert.deepEqual(overallProgress({ state: "queued", stage: "waiting" }), { fraction: 0, secondsLeft: null });
  assert.equal(overallProgress({ state: "done" }).fraction, 1);
});

test("what is shown never goes backwards, even when a new stage's state arrives late or slow", () => {
  let t = 0;
  const clock = new ProgressClock(() => t);
  clock.update({ id: "a", state: "running", stage: "model", progress: 0, stage_estimates: estimates, stage_elapsed_s: 0 });
  t = 7000;
  const late = clock.read().fraction; // 7 s into an 8 s model stage
  // The masks stage begins, but the worker measured the model at 2 s last time: by weight it is behind.
  clock.update({ id: "a", state: "running", stage: "masks", progress: 0, stage_estimates: { decode: 1, model: 2, masks: 20, saving: 0 }, stage_elapsed_s: 0 });
  assert.equal(clock.read().fraction, late); // held, not dropped back to 3/23
  t += 10_000;
  assert.equal(clock.read().fraction, late); // still held while the new weighting catches up
  t += 9_000;
  assert.ok(clock.read().fraction > late); // then moves on
  clock.update({ id: "a", state: "done" });
  assert.equal(clock.read().fraction, 1);
  clock.update({ id: "b", state: "queued", stage: "waiting" }); // a retry is another job: from zero
  assert.equal(clock.read().fraction, 0);
});

test("time left reads in words", () => {
  assert.equal(timeLeftText(null), "");
  assert.equal(timeLeftText(0.4), "almost done");
  assert.equal(timeLeftText(12.4), "about 12 s left");
  assert.equal(timeLeftText(200), "about 3 min left");
});
