import { test } from "node:test";
import assert from "node:assert/strict";

import { createJobFeed } from "../src/socket.js";

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

test("after a reconnect every job is subscribed again and the page is told to re-read over HTTP", () => {
  const { io, socket } = fakeIo();
  let resyncs = 0;
  const feed = createJobFeed({ io, onJob: () => {}, onResync: () => resyncs++ });
  socket.fire("connect");
  feed.followJob("a");
  feed.followJob("b");
  assert.equal(resyncs, 0);
  socket.fire("disconnect");
  socket.fire("connect");
  const again = socket.emitted.slice(2).map((e) => e.payload.job_id).sort();
  assert.deepEqual(again, ["a", "b"]);
  assert.equal(resyncs, 1);
});

test("a refused subscription is reported with the server's error", () => {
  const { io, socket } = fakeIo();
  const errors = [];
  const feed = createJobFeed({ io, onJob: () => assert.fail("no job expected"), onError: (k, e) => errors.push([k, e]) });
  socket.fire("connect");
  feed.followJob("zz");
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

test("unfollowed jobs are ignored, late acks included", () => {
  const { io, socket } = fakeIo();
  const seen = [];
  const feed = createJobFeed({ io, onJob: (j) => seen.push(j.id) });
  socket.fire("connect");
  feed.followJob("x");
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
