import { test } from "node:test";
import assert from "node:assert/strict";

import { ApiError, parseRetryAfter } from "../src/api.js";
import { createUploadQueue } from "../src/upload_queue.js";

/** A fake clock: sleep advances time at once, so waits are counted, not spent. */
function fakeClock() {
  const clock = { t: 0, slept: [] };
  clock.now = () => clock.t;
  clock.sleep = async (ms) => {
    clock.slept.push(ms);
    clock.t += ms;
  };
  return clock;
}

test("no more than `parallel` uploads are in flight at once", async () => {
  let inFlight = 0;
  let most = 0;
  const upload = async (file) => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, 1));
    inFlight -= 1;
    return { id: file };
  };
  const queue = createUploadQueue({ upload, parallel: 3 });
  const jobs = await Promise.all(Array.from({ length: 10 }, (_, i) => queue.add(`f${i}`)));
  assert.equal(most, 3);
  assert.deepEqual(jobs.map((j) => j.id).sort(), Array.from({ length: 10 }, (_, i) => `f${i}`).sort());
});

test("after a 429 nothing more is sent until Retry-After has passed, then every photo goes through", async () => {
  const clock = fakeClock();
  const sentAt = [];
  let refused = false;
  const upload = async (file) => {
    sentAt.push([file, clock.t]);
    if (file === "f2" && !refused) {
      refused = true;
      throw new ApiError("Too many requests: the limit is 2 per 3 second.", 429, "rate_limited", { retryAfter: 3 });
    }
    return { id: file };
  };
  const waits = [];
  let resumed = 0;
  const queue = createUploadQueue({ upload, parallel: 1, sleep: clock.sleep, now: clock.now, onWait: (w) => waits.push(w), onResume: () => (resumed += 1) });
  const jobs = await Promise.all(["f1", "f2", "f3", "f4"].map((f) => queue.add(f)));
  assert.deepEqual(jobs.map((j) => j.id), ["f1", "f2", "f3", "f4"]);
  assert.equal(waits.length, 1);
  assert.equal(waits[0].seconds, 3);
  assert.match(waits[0].error.message, /limit is 2 per 3 second/);
  assert.equal(resumed, 1);
  // The refused photo is sent again first, and only once the 3 s are over; so are all later ones.
  assert.deepEqual(sentAt, [["f1", 0], ["f2", 0], ["f2", 3000], ["f3", 3000], ["f4", 3000]]);
});

test("a 429 without Retry-After waits the fallback time", async () => {
  const clock = fakeClock();
  let first = true;
  const upload = async (file) => {
    if (first) {
      first = false;
      throw new ApiError("Too many requests.", 429, "rate_limited");
    }
    return { id: file };
  };
  const queue = createUploadQueue({ upload, fallbackWaitS: 7, sleep: clock.sleep, now: clock.now });
  await queue.add("a");
  assert.deepEqual(clock.slept, [7000]);
});

test("another failure rejects that photo alone and the others carry on", async () => {
  const upload = async (file) => {
    if (file === "bad") throw new ApiError("'bad': not an image", 415, "unsupported_format");
    return { id: file };
  };
  const queue = createUploadQueue({ upload, parallel: 2 });
  const results = await Promise.allSettled(["a", "bad", "c"].map((f) => queue.add(f)));
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.equal(results[1].reason.status, 415);
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  assert.equal(parseRetryAfter("12"), 12);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter("soon"), null);
  const now = Date.parse("2026-12-03T10:00:00Z");
  assert.equal(parseRetryAfter("Thu, 03 Dec 2026 10:00:30 GMT", now), 30);
  assert.equal(parseRetryAfter("Thu, 03 Dec 2026 09:00:00 GMT", now), 0);
});
