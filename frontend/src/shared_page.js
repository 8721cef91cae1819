/** The shared page `/s/{token}`: the same viewer, read-only, for anyone holding the link (no cookie needed). */
import { io } from "/vendor/socket.io.esm.min.js";

import { createApi } from "./api.js";
import { showNotice } from "./dom.js";
import { showConnection } from "./connection.js";
import { mountViewer, pageTitle, showJobState, titleFor } from "./result_page.js";
import { createJobFeed } from "./socket.js";

const api = createApi();
const token = document.body.dataset.shareToken;
const base = `/api/shared/${encodeURIComponent(token)}`;
const status = document.getElementById("status");
const root = document.getElementById("viewer-root");
const title = document.getElementById("title");
let mounted = false;

/** `GET /api/shared/{token}` answers the job and its result; accept `{job, result}` or the job with `result`. */
function split(reply) {
  if (reply.job) return { job: reply.job, result: reply.result || null };
  const { result = null, ...job } = reply;
  return { job, result };
}

async function show(job, result) {
  title.textContent = titleFor(job);
  document.title = pageTitle(job);
  if (job.state !== "done") {
    showJobState(status, job);
    return;
  }
  if (mounted) return;
  mounted = true;
  const full = result || split(await api.get(base)).result;
  await mountViewer(root, status, { result: full, imageUrl: `${base}/image`, filename: job.filename });
}

async function main() {
  if (!token) {
    // The server answered this address with 404: the link was revoked or never existed.
    showNotice(status, "This share link was revoked or never existed. Ask its owner for a new one.");
    document.body.dataset.ready = "error";
    return;
  }
  let reply;
  try {
    reply = split(await api.get(base));
  } catch (err) {
    showNotice(status, err.message);
    document.body.dataset.ready = "error";
    return;
  }
  if (reply.job.state !== "done") {
    const reread = async () => split(await api.get(base));
    const feed = createJobFeed({
      io,
      auth: { share_token: token },
      onJob: (job) => show(job, null),
      onResync: async () => {
        const fresh = await reread();
        if (feed.accept(fresh.job)) await show(fresh.job, fresh.result);
      },
      onConnection: showConnection,
      fetchJob: async () => (await reread()).job,
    });
    feed.followShared(token);
  }
  await show(reply.job, reply.result);
}

main();
