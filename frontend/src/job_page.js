/** The owner's result page `/jobs/{id}`: follows the job until done, then the viewer and the share button. */
import { io } from "/vendor/socket.io.esm.min.js";

import { createApi } from "./api.js";
import { showNotice } from "./dom.js";
import { mountViewer, showJobState, titleFor } from "./result_page.js";
import { createJobFeed } from "./socket.js";

const api = createApi();
const jobId = document.body.dataset.jobId;
const status = document.getElementById("status");
const root = document.getElementById("viewer-root");
const title = document.getElementById("title");
const shareButton = document.getElementById("share-button");
const shareUrl = document.getElementById("share-url");
const unshareButton = document.getElementById("unshare-button");
let mounted = false;
let feed = null;

async function show(job) {
  title.textContent = titleFor(job);
  if (job.state !== "done") {
    showJobState(status, job);
    if (job.state === "failed") showNotice(status, job.error || "The job failed.");
    return;
  }
  if (mounted) return;
  mounted = true;
  feed?.close();
  const result = await api.get(job.urls?.result || `/api/jobs/${job.id}/result`);
  const viewer = await mountViewer(root, status, { result, imageUrl: job.urls?.image || `/api/jobs/${job.id}/image`, filename: job.filename });
  shareButton.disabled = !viewer;
  window.maskwebViewer = viewer;
}

async function share() {
  shareButton.disabled = true;
  try {
    const reply = await api.post(`/api/jobs/${jobId}/share`);
    const path = reply.url || reply.path || `/s/${reply.token}`;
    const link = new URL(path, window.location.origin).href;
    shareUrl.href = link;
    shareUrl.textContent = link;
    shareUrl.hidden = false;
    unshareButton.hidden = false;
    try {
      await navigator.clipboard.writeText(link);
      shareButton.textContent = "Link copied";
    } catch {
      shareButton.textContent = "Copy the link below";
    }
  } catch (err) {
    showNotice(status, err.message);
  } finally {
    shareButton.disabled = false;
  }
}

/** Revoke every share link of this job: the shared page stops working for everyone. */
async function unshare() {
  unshareButton.disabled = true;
  try {
    await api.delete(`/api/jobs/${jobId}/share`);
    shareUrl.hidden = true;
    shareUrl.removeAttribute("href");
    shareUrl.textContent = "";
    unshareButton.hidden = true;
    shareButton.textContent = "Share link";
  } catch (err) {
    showNotice(status, err.message);
  } finally {
    unshareButton.disabled = false;
  }
}

shareButton.addEventListener("click", share);
unshareButton.addEventListener("click", unshare);

async function main() {
  let job;
  try {
    await api.session();
    job = await api.get(`/api/jobs/${encodeURIComponent(jobId)}`);
  } catch (err) {
    shareButton.hidden = true;
    showNotice(status, err.message);
    document.body.dataset.ready = "error";
    return;
  }
  if (job.state !== "done" && job.state !== "failed" && job.state !== "cancelled") {
    feed = createJobFeed({
      io,
      onJob: (j) => show(j),
      onError: (_key, error) => showNotice(status, error.message),
      onResync: async () => show(await api.get(`/api/jobs/${job.id}`)),
    });
    feed.followJob(job.id);
  }
  await show(job);
}

main();
