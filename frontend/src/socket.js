/**
 * Live job events over Socket.IO.
 *
 * Protocol (server side: backend/web): after connecting, the client emits `subscribe` with `{job_id}` or
 * `{share_token}`; the acknowledgement is `{ok: true, job}` or `{ok: false, error: {code, message}}`; then the
 * server pushes `job` events (the `GET /api/jobs/{id}` object) to the job's room. Rooms do not survive a
 * reconnect, so every followed job is subscribed again on each connect; and since events sent while offline
 * are lost, `onResync` is called after a reconnect so the page re-reads the truth over HTTP. When the
 * credential the socket signed in with is revoked (an API token deleted, the identity cookie rotated), the server
 * sends `signed_out` `{code, message}` and disconnects for good: `onConnection(false, message)`.
 */

/**
 * @param {object} options
 * @param {Function} options.io the socket.io-client `io` function (injected so tests can fake it)
 * @param {object} [options.auth] connect payload, e.g. `{share_token}`; the cookie identifies owners
 * @param {(job: object) => void} options.onJob every job state received (acks and events)
 * @param {(key: string, error: {code: string, message: string}) => void} [options.onError] a refused subscribe
 * @param {() => void} [options.onResync] after a reconnect: re-read state over HTTP
 * @param {(connected: boolean, signedOut?: string) => void} [options.onConnection] `signedOut`: the server's
 *   message when it signed this socket out (no reconnect follows)
 */
export function createJobFeed({ io, auth, onJob, onError = () => {}, onResync = () => {}, onConnection = () => {} }) {
  const followed = new Map(); // key -> subscribe payload
  const socket = io({ auth, transports: ["websocket", "polling"] });
  let connectedBefore = false;

  function subscribe(key, payload) {
    socket.emit("subscribe", payload, (ack) => {
      if (!followed.has(key)) return;
      if (ack && ack.ok && ack.job) onJob(ack.job);
      else onError(key, (ack && ack.error) || { code: "subscribe_failed", message: "Could not follow this job." });
    });
  }

  socket.on("connect", () => {
    for (const [key, payload] of followed) subscribe(key, payload);
    if (connectedBefore) onResync();
    connectedBefore = true;
    onConnection(true);
  });
  let signedOut;
  socket.on("signed_out", (notice) => {
    signedOut = (notice && notice.message) || "Signed out by the server; reload the page.";
  });
  socket.on("disconnect", () => onConnection(false, signedOut));
  socket.on("job", (job) => {
    if (job && (followed.has(`job:${job.id}`) || followed.has("shared"))) onJob(job);
  });

  function follow(key, payload) {
    followed.set(key, payload);
    if (socket.connected) subscribe(key, payload);
  }

  return {
    /** Follow a job the visitor owns. */
    followJob: (jobId) => follow(`job:${jobId}`, { job_id: jobId }),
    /** Follow the job behind a share link. */
    followShared: (token) => follow("shared", { share_token: token }),
    /** Stop reporting a job's events (the server keeps the room; they are ignored here). */
    unfollowJob: (jobId) => followed.delete(`job:${jobId}`),
    isFollowing: (jobId) => followed.has(`job:${jobId}`),
    close: () => socket.disconnect(),
    socket,
  };
}
