/**
 * The owner's result page `/jobs/{id}`: follows the job until done, then the viewer. While the job waits or
 * runs it can be cancelled; a failed job can be retried (its original is sent again as a new job). Sharing is
 * a state of the job (`job.share` in its JSON): while shared, the link and "Stop sharing" are always shown.
 */
import { io } from "/vendor/socket.io.esm.min.js";

import { createApi } from "./api.js";
import { showConnection } from "./connection.js";
import { showNotice } from "./dom.js";
import { FINAL_STATES } from "./jobs.js";
import { mountViewer, pageTitle, showJobState, titleFor } from "./result_page.js";
import { createJobFeed } from "./socket.js";

const api = createApi();
const jobId = document.body.dataset.jobId;
const status = document.getElementById("status");
const root = document.getElementById("viewer-root");
const title = document.getElementById("title");
const shareButton = document.getElementById("share-button");
const shareUrl = document.getElementById("share-url");
const unshareButton = document.getElementById("unshare-button");
const cancelButton = document.getElementById("cancel-button");
const retryButton = document.getElementById("retry-button");
let mounted = false;
let feed = null;
let current = null;

async function show(job) {
  current = job;
  title.textContent = titleFor(job);
  document.title = pageTitle(job);
  cancelButton.hidden = FINAL_STATES.has(job.state);
  retryButton.hidden = job.state !== "failed";
  if ("share" in job) showShare(job.share);
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
}

/**
 * Show the job's live share link, or none. A link made under an earlier secret key cannot be shown again
 * (`url` null): "Stop sharing" still ends it, and "Share link" makes one that can.
 * @param {{url: string | null} | null} share
 */
function showShare(share) {
  if (share && !share.url) {
    showShare(null);
    unshareButton.hidden = false;
    return;
  }
  if (share) {
    const link = new URL(share.url, window.location.origin).href;
    shareUrl.href = link;
    shareUrl.textContent = link;
    shareUrl.hidden = false;
    unshareButton.hidden = false;
    shareButton.textContent = "Copy link";
  } else {
    shareUrl.hidden = true;
    shareUrl.removeAttribute("href");
    shareUrl.textContent = "";
    unshareButton.hidden = true;
    shareButton.textContent = "Share link";
  }
}

/**
 * Run a button's action with the button disabled meanwhile; a failure is said in the status area, with the
 * wait the server asked for when it refused for a limit.
 */
async function press(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (err) {
    showNotice(status, err.retryAfter ? `${err.message} Try again in ${err.retryAfter} s.` : err.message);
  } finally {
    button.disabled = false;
  }
}

/** Share (the server answers the live link when there is one, so a second click mints nothing) and copy. */
async function share() {
  const reply = await api.post(`/api/jobs/${jobId}/share`);
  showShare({ url: reply.url || `/s/${reply.token}` });
  try {
    await navigator.clipboard.writeText(shareUrl.href);
    shareButton.textContent = "Link copied";
  } catch {
    shareButton.textContent = "Copy the link beside";
  }
}

/** Revoke every share link of this job: the shared page stops working for everyone. */
async function unshare() {
  await api.delete(`/api/jobs/${jobId}/share`);
  showShare(null);
  shareButton.focus();
}

async function cancel() {
  await show(await api.post(`/api/jobs/${jobId}/cancel`));
}

/** Send the failed job's original again as a new job, and go to that job's page. */
async function retry() {
  const job = await api.uploadImage(await api.originalFile(current));
  window.location.assign(`/jobs/${job.id}`);
}

shareButton.addEventListener("click", () => press(shareButton, share));
unshareButton.addEventListener("click", () => press(unshareButton, unshare));
cancelButton.addEventListener("click", () => press(cancelButton, cancel));
retryButton.addEventListener("click", () => press(retryButton, retry));

async function main() {
  let job;
  try {
    await api.session();
    job = await api.job(jobId);
  } catch (err) {
    shareButton.hidden = true;
    showNotice(status, err.message);
    document.body.dataset.ready = "error";
    return;
  }
  if (!FINAL_STATES.has(job.state)) {
    feed = createJobFeed({
      io,
      onJob: (j) => show(j),
      onError: (_key, error) => showNotice(status, error.message),
      onResync: async () => {
        const fresh = await api.job(job.id);
        if (feed.accept(fresh)) await show(fresh);
      },
      onConnection: showConnection,
      fetchJob: ({ job_id: id }) => api.job(id),
    });
    feed.followJob(job.id);
  }
  await show(job);
}

main();
