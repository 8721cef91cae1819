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

/** An upload that answers each photo's job as `{id: photo}` and records the requests it was sent. */
function recording(refuse = () => null) {
  const requests = [];
  const upload = async (photos) => {
    requests.push(photos);
    await Promise.resolve();
    const error = refuse(photos, requests.length);
    if (error) throw error;
    return photos.map((photo) => ({ id: photo.name ?? photo }));
  };
  return { upload, requests };
}

test("no more than `parallel` requests are in flight at once", async () => {
  let inFlight = 0;
  let most = 0;
  const upload = async (photos) => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, 1));
    inFlight -= 1;
    return photos.map((file) => ({ id: file }));
  };
  const queue = createUploadQueue({ upload, parallel: 3, maxPhotos: 1 });
  const jobs = await Promise.all(Array.from({ length: 10 }, (_, i) => queue.add(`f${i}`)));
  assert.equal(most, 3);
  assert.deepEqual(jobs.map((j) => j.id).sort(), Array.from({ length: 10 }, (_, i) => `f${i}`).sort());
});

test("after a 429 nothing more is sent until Retry-After has passed, then every photo goes through", async () => {
  const clock = fakeClock();
  const sentAt = [];
  let refused = false;
  const upload = async ([file]) => {
    sentAt.push([file, clock.t]);
    if (file === "f2" && !refused) {
      refused = true;
      throw new ApiError("Too many requests: the limit is 2 per 3 second.", 429, "rate_limited", { retryAfter: 3 });
    }
    return [{ id: file }];
  };
  const waits = [];
  let resumed = 0;
  const queue = createUploadQueue({ upload, parallel: 1, maxPhotos: 1, sleep: clock.sleep, now: clock.now, onWait: (w) => waits.push(w), onResume: () => (resumed += 1) });
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
  const upload = async ([file]) => {
    if (first) {
      first = false;
      throw new ApiError("Too many requests.", 429, "rate_limited");
    }
    return [{ id: file }];
  };
  const queue = createUploadQueue({ upload, fallbackWaitS: 7, sleep: clock.sleep, now: clock.now });
  await queue.add("a");
  assert.deepEqual(clock.slept, [7000]);
});

test("another failure of a lone photo rejects it alone and the others carry on", async () => {
  const upload = async ([file]) => {
    if (file === "bad") throw new ApiError("'bad': not an image", 415, "unsupported_format");
    return [{ id: file }];
  };
  const queue = createUploadQueue({ upload, parallel: 2, maxPhotos: 1 });
  const results = await Promise.allSettled(["a", "bad", "c"].map((f) => queue.add(f)));
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.equal(results[1].reason.status, 415);
});

test("photos added in one task share requests of up to `maxPhotos`, each resolved with its own job", async () => {
  const { upload, requests } = recording();
  const queue = createUploadQueue({ upload, parallel: 3, maxPhotos: 5 });
  const names = Array.from({ length: 12 }, (_, i) => `p${i}`);
  const jobs = await Promise.all(names.map((f) => queue.add(f)));
  assert.deepEqual(jobs.map((j) => j.id), names);
  assert.deepEqual(requests, [names.slice(0, 5), names.slice(5, 10), names.slice(10)]);
});

test("photos added while a request is on its way go together in the next one", async () => {
  let release;
  const first = new Promise((r) => (release = r));
  const requests = [];
  const upload = async (photos) => {
    requests.push(photos);
    if (requests.length === 1) await first;
    return photos.map((id) => ({ id }));
  };
  const queue = createUploadQueue({ upload, parallel: 1, maxPhotos: 5 });
  const a = queue.add("a");
  await Promise.resolve(); // "a" is sent on its own: it was the whole of its task
  const later = ["b", "c", "d"].map((f) => queue.add(f));
  assert.equal(queue.waitingCount, 3);
  release();
  await Promise.all([a, ...later]);
  assert.deepEqual(requests, [["a"], ["b", "c", "d"]]);
});

test("a request holds at most `maxBytes` of photos; a larger photo goes alone", async () => {
  const { upload, requests } = recording();
  const queue = createUploadQueue({ upload, parallel: 1, maxPhotos: 5, maxBytes: 10 });
  const photo = (name, size) => ({ name, size });
  const photos = [photo("a", 4), photo("b", 4), photo("c", 4), photo("big", 30), photo("d", 1)];
  await Promise.all(photos.map((p) => queue.add(p)));
  assert.deepEqual(requests.map((r) => r.map((p) => p.name)), [["a", "b"], ["c"], ["big"], ["d"]]);
});

test("a refusal naming one file of a request sends the others again, then that photo on its own", async () => {
  const named = (index) => new ApiError(`File ${index + 1} ('bad'): not an image`, 415, "unsupported_format", { details: { index, filename: "bad" } });
  const alone = new ApiError("'bad': not an image", 415, "unsupported_format", { details: { index: 0, filename: "bad" } });
  const refuse = (photos) => (!photos.includes("bad") ? null : photos.length > 1 ? named(photos.indexOf("bad")) : alone);
  const { upload, requests } = recording(refuse);
  const queue = createUploadQueue({ upload, parallel: 1 });
  const results = await Promise.allSettled(["a", "bad", "c", "d"].map((f) => queue.add(f)));
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled", "fulfilled"]);
  assert.equal(results[1].reason, alone); // the words about that photo alone
  assert.deepEqual(results.filter((r) => r.value).map((r) => r.value.id), ["a", "c", "d"]);
  assert.deepEqual(requests, [["a", "bad", "c", "d"], ["a", "c", "d"], ["bad"]]);
});

test("a request refused as too large is sent again one photo at a time", async () => {
  const tooLarge = new ApiError("The request is larger than 8 MB.", 413, "request_too_large");
  const { upload, requests } = recording((photos) => (photos.length > 1 ? tooLarge : null));
  const queue = createUploadQueue({ upload, parallel: 1 });
  const jobs = await Promise.all(["a", "b", "c"].map((f) => queue.add(f)));
  assert.deepEqual(jobs.map((j) => j.id), ["a", "b", "c"]);
  assert.deepEqual(requests, [["a", "b", "c"], ["a"], ["b"], ["c"]]);
});

test("a refusal of the request as a whole rejects each of its photos with it", async () => {
  const full = new ApiError("The server's disk is almost full.", 507, "insufficient_storage", { details: { limit: "free_disk" } });
  const { upload, requests } = recording((photos) => (photos.includes("a") ? full : null));
  const queue = createUploadQueue({ upload, parallel: 1, maxPhotos: 2 });
  const results = await Promise.allSettled(["a", "b", "c"].map((f) => queue.add(f)));
  assert.deepEqual(results.map((r) => r.reason ?? r.value.id), [full, full, "c"]);
  assert.deepEqual(requests, [["a", "b"], ["c"]]);
});

test("after a 429 the refused request's photos are sent again together", async () => {
  const clock = fakeClock();
  const slow = new ApiError("Too many requests.", 429, "rate_limited", { retryAfter: 2 });
  const { upload, requests } = recording((_, n) => (n === 1 ? slow : null));
  const queue = createUploadQueue({ upload, sleep: clock.sleep, now: clock.now });
  const jobs = await Promise.all(["a", "b"].map((f) => queue.add(f)));
  assert.deepEqual(jobs.map((j) => j.id), ["a", "b"]);
  assert.deepEqual(requests, [["a", "b"], ["a", "b"]]);
  assert.deepEqual(clock.slept, [2000]);
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  assert.equal(parseRetryAfter("12"), 12);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter("soon"), null);
  const now = Date.parse("2026-12-03T10:00:00Z");
  assert.equal(parseRetryAfter("Thu, 03 Dec 2026 10:00:30 GMT", now), 30);
  assert.equal(parseRetryAfter("Thu, 03 Dec 2026 09:00:00 GMT", now), 0);
});
