import { test } from "node:test";
import assert from "node:assert/strict";

import { MAX_SUBSCRIBE_JOBS, createJobFeed } from "../src/socket.js";

/** Let the feed send what was followed in this task (it subscribes those together at the task's end). */
const settle = () => new Promise((resolve) => queueMicrotask(resolve));

/** A stand-in for socket.io-client's socket: records emits, lets the test fire events and answer acks. */
function fakeIo() {
  const socket = {
    connected: false,
    handlers: {},
    emitted: [],
    on(name, fn) {
      this.handlers[name] = fn;
    },
    emit(name, payload, ack) {
      this.emitted.push({ name, payload, ack });
    },
    disconnect() {
      this.connected = false;
    },
    fire(name, ...args) {
      if (name === "connect") this.connected = true;
      if (name === "disconnect") this.connected = false;
      this.handlers[name]?.(...args);
    },
  };
  const io = (options) => {
    socket.options = options;
    return socket;
  };
  return { io, socket };
}

test("subscribes on connect and reports the acknowledged state", () => {
  const { io, socket } = fakeIo();
  const seen = [];
  const feed = createJobFeed({ io, onJob: (j) => seen.push(j) });
  feed.followJob("j1"); // before the connection: queued until connect
  assert.equal(socket.emitted.length, 0);
  socket.fire("connect");
  assert.deepEqual(socket.emitted[0].payload, { job_id: "j1" });
  socket.emitted[0].ack({ ok: true, job: { id: "j1", state: "queued" } });
  socket.fire("job", { id: "j1", state: "running", stage: "model" });
  socket.fire("job", { id: "other", state: "running" }); // not followed here
  assert.deepEqual(seen.map((j) => j.state), ["queued", "running"]);
});

test("an event older than one already reported is dropped; an equal revision (a moved position) is not", async () => {
  const { io, socket } = fakeIo();
  const seen = [];
  const feed = createJobFeed({ io, onJob: (j) => seen.push(`${j.state}@${j.revision}`) });
  socket.fire("connect");
  feed.followJob("j1");
  await settle();
  socket.emitted[0].ack({ ok: true, job: { id: "j1", state: "queued", queue_position: 2, revision: 1 } });
  socket.fire("job", { id: "j1", state: "queued", queue_position: 1, revision: 1 });
  socket.fire("job", { id: "j1", state: "running", stage: "decode", revision: 3 });
  // a dispatcher round read the job before the worker claimed it; its event arrives after the claim's
  socket.fire("job", { id: "j1", state: "queued", queue_position: 1, revision: 2 });
  socket.fire("job", { id: "j1", state: "done", revision: 7 });
  assert.deepEqual(seen, ["queued@1", "queued@1", "running@3", "done@7"]);
});

test("after a reconnect every job is subscribed again, in one message, and the page is told to re-read over HTTP", async () => {
  const { io, socket } = fakeIo();
  let resyncs = 0;
  const feed = createJobFeed({ io, onJob: () => {}, onResync: () => resyncs++ });
  socket.fire("connect");
  feed.followJob("a");
  await settle();
  feed.followJob("b");
  await settle();
  assert.deepEqual(socket.emitted.map((e) => e.payload), [{ job_id: "a" }, { job_id: "b" }]); // one at a time
  assert.equal(resyncs, 0);
  socket.fire("disconnect");
  socket.fire("connect");
  assert.deepEqual(socket.emitted.slice(2).map((e) => e.payload), [{ job_ids: ["a", "b"] }]);
  assert.equal(resyncs, 1);
});

test("jobs followed together are subscribed in one message; its answer reports each job and each refusal", async () => {
  const { io, socket } = fakeIo();
  const seen = [];
  const errors = [];
  const feed = createJobFeed({ io, onJob: (j) => seen.push(j.id), onError: (k, e) => errors.push([k, e.code]) });
  socket.fire("connect");
  for (const id of ["a", "b", "c"]) feed.followJob(id);
  assert.equal(socket.emitted.length, 0); // sent at the end of the task, together
  await settle();
  assert.deepEqual(socket.emitted.map((e) => e.payload), [{ job_ids: ["a", "b", "c"] }]);
  socket.emitted[0].ack({
    ok: true,
    jobs: [{ id: "a", state: "queued" }, { id: "c", state: "running" }],
    refused: [{ job_id: "b", error: { code: "not_found", message: "No such job." } }],
  });
  assert.deepEqual(seen, ["a", "c"]);
  assert.deepEqual(errors, [["job:b", "not_found"]]);
  socket.fire("job", { id: "c", state: "done" });
  assert.deepEqual(seen, ["a", "c", "c"]);
});

test("more jobs than the server takes in one subscribe go in several; a refused message fails each of its jobs", async () => {
  const { io, socket } = fakeIo();
  const errors = [];
  const feed = createJobFeed({ io, onJob: () => {}, onError: (k) => errors.push(k) });
  socket.fire("connect");
  const ids = Array.from({ length: MAX_SUBSCRIBE_JOBS + 1 }, (_, i) => `j${i}`);
  for (const id of ids) feed.followJob(id);
  await settle();
  assert.deepEqual(socket.emitted.map((e) => e.payload), [
    { job_ids: ids.slice(0, MAX_SUBSCRIBE_JOBS) },
    { job_id: ids[MAX_SUBSCRIBE_JOBS] },
  ]);
  socket.emitted[0].ack({ ok: false, error: { code: "bad_request", message: "Too many." } });
  assert.equal(errors.length, MAX_SUBSCRIBE_JOBS);
});

test("a job the page re-read over HTTP keeps the revision order with the events", () => {
  const { io, socket } = fakeIo();
  const seen = [];
  const feed = createJobFeed({ io, onJob: (j) => seen.push(`${j.state}@${j.revision}`) });
  socket.fire("connect");
  feed.followJob("j1");
  socket.fire("job", { id: "j1", state: "running", stage: "model", revision: 4 });
  assert.equal(feed.accept({ id: "j1", state: "running", stage: "model", revision: 3 }), false); // older read
  assert.equal(feed.accept({ id: "j1", state: "running", stage: "saving", revision: 6 }), true); // the page shows it
  socket.fire("job", { id: "j1", state: "running", stage: "masks", revision: 5 }); // sent before that read
  socket.fire("job", { id: "j1", state: "done", revision: 7 });
  assert.deepEqual(seen, ["running@4", "done@7"]);
  assert.equal(feed.accept({ id: "j2", state: "queued", revision: 9 }), false); // not followed
});

test("a refused subscription is reported with the server's error", async () => {
  const { io, socket } = fakeIo();
  const errors = [];
  const feed = createJobFeed({ io, onJob: () => assert.fail("no job expected"), onError: (k, e) => errors.push([k, e]) });
  socket.fire("connect");
  feed.followJob("zz");
  await settle();
  socket.emitted[0].ack({ ok: false, error: { code: "not_found", message: "No such job." } });
  assert.deepEqual(errors, [["job:zz", { code: "not_found", message: "No such job." }]]);
});

test("share-token viewers connect with the token and subscribe by it", () => {
  const { io, socket } = fakeIo();
  const seen = [];
  const feed = createJobFeed({ io, auth: { share_token: "T" }, onJob: (j) => seen.push(j.id) });
  feed.followShared("T");
  socket.fire("connect");
  assert.deepEqual(socket.options.auth, { share_token: "T" });
  assert.deepEqual(socket.emitted[0].payload, { share_token: "T" });
  socket.fire("job", { id: "j5", state: "done" });
  assert.deepEqual(seen, ["j5"]);
});

test("unfollowed jobs are ignored, late acks included", async () => {
  const { io, socket } = fakeIo();
  const seen = [];
  const feed = createJobFeed({ io, onJob: (j) => seen.push(j.id) });
  socket.fire("connect");
  feed.followJob("x");
  feed.followJob("y");
  feed.unfollowJob("y"); // unfollowed before the task ended: never sent
  await settle();
  assert.deepEqual(socket.emitted.map((e) => e.payload), [{ job_id: "x" }]);
  feed.unfollowJob("x");
  socket.emitted[0].ack({ ok: true, job: { id: "x", state: "done" } });
  socket.fire("job", { id: "x", state: "done" });
  assert.deepEqual(seen, []);
});

test("a socket the server signs out reports the server's message with the disconnect", () => {
  const { io, socket } = fakeIo();
  const states = [];
  createJobFeed({ io, onJob: () => {}, onConnection: (...args) => states.push(args) });
  socket.fire("connect");
  socket.fire("disconnect"); // an ordinary drop: no message
  socket.fire("connect");
  socket.fire("signed_out", { code: "cookie_rotated", message: "This identity cookie was replaced." });
  socket.fire("disconnect");
  assert.deepEqual(states, [[true], [false, undefined], [true], [false, "This identity cookie was replaced."]]);
});

/** Timers the test runs by hand: `run()` fires the pending one and returns its delay. */
function fakeTimers() {
  const pending = new Map();
  let next = 1;
  return {
    set(fn, ms) {
      pending.set(next, { fn, ms });
      return next++;
    },
    clear(id) {
      pending.delete(id);
    },
    get count() {
      return pending.size;
    },
    async run() {
      const [id, { fn, ms }] = pending.entries().next().value;
      pending.delete(id);
      await fn();
      return ms;
    },
  };
}

test("without a connection the feed polls its unfinished jobs over HTTP, backing off, until it connects", async () => {
  const { io, socket } = fakeIo();
  const timers = fakeTimers();
  const seen = [];
  const asked = [];
  const connection = [];
  const states = { a: "queued", b: "running" };
  const feed = createJobFeed({
    io,
    timers,
    onJob: (j) => seen.push(`${j.id}:${j.state}`),
    onConnection: (...args) => connection.push(args),
    fetchJob: async ({ job_id: id }) => {
      asked.push(id);
      return { id, state: states[id] };
    },
  });
  feed.followJob("a");
  feed.followJob("b");
  assert.equal(timers.count, 0, "no polling before the first failed attempt");
  socket.fire("connect_error", new Error("websocket error"));
  socket.fire("connect_error", new Error("websocket error")); // every retry fails the same way
  assert.deepEqual(connection, [[false, undefined]], "the page hears once that it is offline");
  assert.equal(await timers.run(), 3000);
  assert.deepEqual(asked.sort(), ["a", "b"]);
  states.a = "done";
  assert.equal(await timers.run(), 6000);
  states.b = "done";
  assert.equal(await timers.run(), 12000);
  assert.deepEqual(asked.filter((id) => id === "a").length, 2, "a final job is not read again");
  assert.deepEqual(seen, ["a:queued", "b:running", "a:done", "b:running", "b:done"]);
  assert.equal(timers.count, 1, "still offline: the next poll waits");
  feed.followJob("c"); // uploaded while offline: read after the first delay again, not the current 24 s
  states.c = "queued";
  assert.equal(timers.count, 1);
  assert.equal(await timers.run(), 3000);
  assert.deepEqual(seen.at(-1), "c:queued");
  socket.fire("connect");
  assert.equal(timers.count, 0, "connected: polling stops");
  assert.deepEqual(connection.at(-1), [true]);
});

test("polling waits at most 30 s between reads, reports a vanished job, and stops once signed out", async () => {
  const { io, socket } = fakeIo();
  const timers = fakeTimers();
  const errors = [];
  const feed = createJobFeed({
    io,
    timers,
    onJob: () => {},
    onError: (key, e) => errors.push([key, e.code]),
    fetchJob: async ({ job_id: id }) => {
      if (id === "gone") throw Object.assign(new Error("No such job."), { status: 404 });
      throw Object.assign(new Error("offline"), { status: 0 });
    },
  });
  feed.followJob("x");
  feed.followJob("gone");
  socket.fire("connect_error", new Error("down"));
  const delays = [];
  for (let i = 0; i < 6; i++) delays.push(await timers.run());
  assert.deepEqual(delays, [3000, 6000, 12000, 24000, 30000, 30000]);
  assert.deepEqual(errors[0], ["job:gone", "not_found"]);
  socket.fire("connect");
  socket.fire("signed_out", { code: "api_token_revoked", message: "This API token was deleted." });
  socket.fire("disconnect");
  assert.equal(timers.count, 0, "a signed-out page does not poll with a credential that no longer works");
});

test("a feed without fetchJob does not poll", () => {
  const { io, socket } = fakeIo();
  const timers = fakeTimers();
  const feed = createJobFeed({ io, timers, onJob: () => {} });
  feed.followJob("a");
  socket.fire("connect_error", new Error("down"));
  assert.equal(timers.count, 0);
});
