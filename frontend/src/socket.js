/**
 * Live job events over Socket.IO.
 *
 * Protocol (server side: backend/web): after connecting, the client emits `subscribe` with `{job_id}` or
 * `{share_token}`; the acknowledgement is `{ok: true, job}` or `{ok: false, error: {code, message}}`; then the
 * server pushes `job` events (the `GET /api/jobs/{id}` object) to the job's room. Jobs followed together (in
 * one task: a restored list, a reconnect) go in one message, `{job_ids}` (at most `MAX_SUBSCRIBE_JOBS`),
 * acknowledged with `{ok: true, jobs, refused: [{job_id, error}]}`: one read on the server instead of one per
 * job. Rooms do not survive a
 * reconnect, so every followed job is subscribed again on each connect; and since events sent while offline
 * are lost, `onResync` is called after a reconnect so the page re-reads the truth over HTTP (and shows a
 * followed job it read only if `accept` takes it, so its reads and the events keep one order). When the
 * credential the socket signed in with is revoked (an API token deleted, the identity cookie rotated), the server
 * sends `signed_out` `{code, message}` and disconnects for good: `onConnection(false, message)`.
 *
 * Without a connection (a proxy that blocks WebSocket, a server restarting) the feed falls back to HTTP: every
 * followed job not yet final is read with `fetchJob` and reported through `onJob`, first after
 * `POLL_FIRST_MS`, then at intervals doubling up to `POLL_MAX_MS`, until the socket connects (or is signed out).
 * A page that never connects hears `onConnection(false)` on its first failed attempt, so it can say so.
 *
 * Events about one job come from several server processes and can arrive out of order (a dispatcher round's
 * "queued" read before a worker claimed the job, delivered after the worker's "running"). Every job carries a
 * `revision` that grows with each change, so the feed reports a job only when its revision is at least the
 * highest already reported for it: an older one is dropped, an equal one (a queue position that moved) is not.
 */

import { FINAL_STATES } from "./jobs.js";

export const POLL_FIRST_MS = 3000;
export const POLL_MAX_MS = 30000;
export const MAX_SUBSCRIBE_JOBS = 100; // job ids the server takes in one subscribe (backend/web/sockets.py)

const SUBSCRIBE_FAILED = { code: "subscribe_failed", message: "Could not follow this job." };

/**
 * @param {object} options
 * @param {Function} options.io the socket.io-client `io` function (injected so tests can fake it)
 * @param {object} [options.auth] connect payload, e.g. `{share_token}`; the cookie identifies owners
 * @param {(job: object) => void} options.onJob every job state received (acks and events)
 * @param {(key: string, error: {code: string, message: string}) => void} [options.onError] a refused subscribe
 * @param {() => void} [options.onResync] after a reconnect: re-read state over HTTP (and show a followed job only
 *   if `accept` takes it)
 * @param {(connected: boolean, signedOut?: string) => void} [options.onConnection] `signedOut`: the server's
 *   message when it signed this socket out (no reconnect follows)
 * @param {(payload: object) => Promise<object>} [options.fetchJob] the job behind a subscribe payload over HTTP
 *   (`{job_id}` or `{share_token}`): what the feed polls while it has no connection; none: no polling
 * @param {{set: Function, clear: Function}} [options.timers] `setTimeout`/`clearTimeout` (tests inject fakes)
 */
export function createJobFeed({
  io,
  auth,
  onJob,
  onError = () => {},
  onResync = () => {},
  onConnection = () => {},
  fetchJob,
  timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (id) => clearTimeout(id) },
}) {
  const followed = new Map(); // key -> subscribe payload
  const lastState = new Map(); // key -> the last state reported for it
  const lastRevision = new Map(); // key -> the highest revision reported for it
  const socket = io({ auth, transports: ["websocket", "polling"] });
  let connectedBefore = false;
  let offlineShown = false;
  let signedOut;
  let closed = false;
  let pollTimer = null;
  let pollDelay = POLL_FIRST_MS;

  function keyOf(job) {
    return followed.has("shared") ? "shared" : `job:${job.id}`;
  }

  /** Whether `job` (followed, and not older than what the page was shown) should be shown; if so it becomes
   * the newest the feed knows of. */
  function accept(job) {
    const key = keyOf(job);
    if (!followed.has(key)) return false;
    if (Number.isInteger(job.revision)) {
      if (job.revision < (lastRevision.get(key) ?? -1)) return false; // overtaken by a newer one
      lastRevision.set(key, job.revision);
    }
    lastState.set(key, job.state);
    return true;
  }

  function report(job) {
    if (accept(job)) onJob(job);
  }

  /** Subscribe one payload (a share link, or a single job) and report its acknowledged state. */
  function subscribe(key, payload) {
    socket.emit("subscribe", payload, (ack) => {
      if (!followed.has(key)) return;
      if (ack && ack.ok && ack.job) report(ack.job);
      else onError(key, (ack && ack.error) || SUBSCRIBE_FAILED);
    });
  }

  /** Subscribe several followed jobs in one message per `MAX_SUBSCRIBE_JOBS`; a lone one as `{job_id}`. */
  function subscribeJobs(keys) {
    for (let start = 0; start < keys.length; start += MAX_SUBSCRIBE_JOBS) {
      const chunk = keys.slice(start, start + MAX_SUBSCRIBE_JOBS);
      if (chunk.length === 1) {
        subscribe(chunk[0], followed.get(chunk[0]));
        continue;
      }
      socket.emit("subscribe", { job_ids: chunk.map((key) => followed.get(key).job_id) }, (ack) => {
        if (!(ack && ack.ok)) {
          for (const key of chunk) if (followed.has(key)) onError(key, (ack && ack.error) || SUBSCRIBE_FAILED);
          return;
        }
        for (const job of ack.jobs || []) if (followed.has(`job:${job.id}`)) report(job);
        for (const { job_id: id, error } of ack.refused || []) {
          if (followed.has(`job:${id}`)) onError(`job:${id}`, error || SUBSCRIBE_FAILED);
        }
      });
    }
  }

  let pending = null; // keys followed in this task, subscribed together at its end

  /** Subscribe `keys` now: the share link alone, the jobs together. */
  function subscribeAll(keys) {
    const jobs = keys.filter((key) => key !== "shared" && followed.has(key));
    if (keys.includes("shared") && followed.has("shared")) subscribe("shared", followed.get("shared"));
    if (jobs.length) subscribeJobs(jobs);
  }

  function subscribeSoon(key) {
    if (pending === null) {
      pending = new Set();
      queueMicrotask(() => {
        const keys = [...pending];
        pending = null;
        if (socket.connected) subscribeAll(keys);
      });
    }
    pending.add(key);
  }

  function stopPolling() {
    if (pollTimer !== null) timers.clear(pollTimer);
    pollTimer = null;
    pollDelay = POLL_FIRST_MS;
  }

  function schedulePoll() {
    if (!fetchJob || pollTimer !== null || socket.connected || signedOut || closed) return;
    pollTimer = timers.set(poll, pollDelay);
    pollDelay = Math.min(pollDelay * 2, POLL_MAX_MS);
  }

  async function poll() {
    pollTimer = null;
    if (socket.connected || signedOut || closed) return;
    const pending = [...followed].filter(([key]) => !FINAL_STATES.has(lastState.get(key)));
    await Promise.all(
      pending.map(async ([key, payload]) => {
        try {
          const job = await fetchJob(payload);
          if (!socket.connected && followed.has(key) && job) report(job);
        } catch (err) {
          if (err && err.status === 404 && followed.has(key)) onError(key, { code: "not_found", message: err.message });
          // anything else (the server unreachable too): the next poll tries again
        }
      }),
    );
    schedulePoll();
  }

  function offline() {
    if (!offlineShown || signedOut) onConnection(false, signedOut);
    offlineShown = true;
    schedulePoll();
  }

  socket.on("connect", () => {
    stopPolling();
    if (pending !== null) pending.clear(); // all of them go now
    subscribeAll([...followed.keys()]);
    if (connectedBefore) onResync();
    connectedBefore = true;
    offlineShown = false;
    onConnection(true);
  });
  socket.on("signed_out", (notice) => {
    signedOut = (notice && notice.message) || "Signed out by the server; reload the page.";
  });
  socket.on("disconnect", offline);
  socket.on("connect_error", offline);
  socket.on("job", (job) => {
    if (job && followed.has(keyOf(job))) report(job);
  });

  function follow(key, payload) {
    followed.set(key, payload);
    if (socket.connected) subscribeSoon(key);
    else if (offlineShown) {
      stopPolling(); // a job followed while offline is read soon, not after the current (longer) wait
      schedulePoll();
    }
  }

  return {
    /** Follow a job the visitor owns. */
    followJob: (jobId) => follow(`job:${jobId}`, { job_id: jobId }),
    /** Follow the job behind a share link. */
    followShared: (token) => follow("shared", { share_token: token }),
    /** Stop reporting a job's events (the server keeps the room; they are ignored here). */
    unfollowJob: (jobId) => {
      followed.delete(`job:${jobId}`);
      lastState.delete(`job:${jobId}`);
      lastRevision.delete(`job:${jobId}`);
    },
    isFollowing: (jobId) => followed.has(`job:${jobId}`),
    /** A followed job the page read itself (over HTTP, in `onResync`): true if the page should show it, false
     * if the feed has already reported a newer revision. Showing only what this accepts keeps the page's own
     * reads in the same order as the events: a late event older than the read is then dropped too. */
    accept,
    close: () => {
      closed = true;
      stopPolling();
      socket.disconnect();
    },
    socket,
  };
}
