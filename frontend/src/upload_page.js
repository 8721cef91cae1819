/**
 * Upload page: drop, pick or paste photos; one card per photo follows its job live over Socket.IO.
 * Cards survive a reload (active jobs and this tab's recent jobs are read back from `GET /api/jobs`) and a
 * lost connection (the feed resubscribes and every card re-reads its job over HTTP).
 */
import { io } from "/vendor/socket.io.esm.min.js";

import { createApi } from "./api.js";
import { showConnection } from "./connection.js";
import { el, showNotice } from "./dom.js";
import { FINAL_STATES, stageText } from "./jobs.js";
import { ProgressClock } from "./progress.js";
import { createJobFeed } from "./socket.js";
import { createUploadQueue } from "./upload_queue.js";

const api = createApi();
const cardsRoot = document.getElementById("cards");
const notices = document.getElementById("notices");
const input = document.getElementById("upload-input");
const dropzone = document.getElementById("dropzone");
const REMEMBERED = "maskweb.upload.jobs";
const PARALLEL_UPLOADS = 3; // requests in flight
const MAX_PHOTOS_PER_REQUEST = 5; // a selection goes up to five photos a request: a third of the server's work

/** @type {Map<string, JobCard>} */
const cards = new Map();

const feed = createJobFeed({
  io,
  onJob: (job) => cards.get(job.id)?.update(job),
  onError: (key, error) => cards.get(key.replace(/^job:/, ""))?.fail(error.message),
  onResync: () => refreshAll(),
  onConnection: showConnection,
  fetchJob: ({ job_id: id }) => api.job(id),
});

const uploads = createUploadQueue({
  upload: (files) => api.uploadImages(files.map((file) => ({ file }))),
  parallel: PARALLEL_UPLOADS,
  maxPhotos: MAX_PHOTOS_PER_REQUEST,
  onWait: ({ until, error }) => showWait(until, error),
  onResume: () => clearWait(),
});

function remembered() {
  try {
    return JSON.parse(sessionStorage.getItem(REMEMBERED) || "[]");
  } catch {
    return [];
  }
}

function remember(jobId, keep = true) {
  const ids = remembered().filter((id) => id !== jobId);
  if (keep) ids.unshift(jobId);
  sessionStorage.setItem(REMEMBERED, JSON.stringify(ids.slice(0, 200)));
}

class JobCard {
  /**
   * @param {string} filename
   * @param {Blob | null} file the photo when this page has it (uploads from here); null for restored cards
   */
  constructor(filename, file) {
    this.job = null;
    this.file = file;
    this.clock = new ProgressClock();
    this.preview = el("img", { class: "preview", alt: "", src: file ? URL.createObjectURL(file) : "" });
    // A file the browser cannot show (TIFF, or one the server refused) keeps an empty frame until the
    // server's thumbnail (a JPEG made after the upload) replaces it.
    this.preview.addEventListener("error", () => {
      this.preview.classList.add("no-preview");
      if (this.job) this.showThumbnail(this.job);
    });
    this.title = el("div", { class: "card-title" }, filename);
    this.status = el("span", { class: "state", dataset: { testid: "job-status" } });
    this.stage = el("span", { class: "stage" });
    this.progress = el("progress", { max: 1, value: 0, dataset: { testid: "job-progress" }, "aria-label": `Progress of ${filename}` });
    this.error = el("p", { class: "card-error", role: "alert", hidden: true });
    this.cancelButton = el("button", { type: "button", class: "button small", hidden: true, onclick: () => this.cancel() }, "Cancel");
    this.retryButton = el("button", { type: "button", class: "button small", hidden: true, dataset: { testid: "retry-button" }, onclick: () => this.retry() }, "Retry");
    this.openLink = el("a", { class: "button small primary", hidden: true }, "Open result");
    this.removeButton = el("button", { type: "button", class: "button small quiet", hidden: true, title: "Remove this card (the result stays in your gallery)", onclick: () => this.remove() }, "Dismiss");
    this.node = el(
      "article",
      { class: "card", dataset: { testid: "job-card" } },
      this.preview,
      el(
        "div",
        { class: "card-body" },
        this.title,
        el("div", { class: "card-state" }, this.status, this.stage),
        this.progress,
        this.error,
        el("div", { class: "card-actions" }, this.cancelButton, this.retryButton, this.openLink, this.removeButton),
      ),
    );
  }

  /** Before the job exists: "waiting" (queued in this page) or "uploading" (its request is on its way). */
  local(state, words) {
    this.node.dataset.state = state;
    this.status.textContent = state;
    this.status.className = "state";
    this.stage.textContent = words;
    this.error.hidden = true;
    this.retryButton.hidden = true;
    this.removeButton.hidden = true;
  }

  /** Show a job state (from the upload reply, an ack, an event or an HTTP read). */
  update(job) {
    this.job = job;
    this.node.dataset.jobId = job.id;
    this.node.dataset.state = job.state;
    this.title.textContent = job.filename || this.title.textContent;
    this.status.textContent = job.state;
    this.status.className = `state state-${job.state}`;
    this.clock.update(job);
    this.tick();
    this.error.hidden = job.state !== "failed";
    this.error.textContent = job.state === "failed" ? job.error || "The job failed." : "";
    const final = FINAL_STATES.has(job.state);
    this.cancelButton.hidden = final;
    this.retryButton.hidden = job.state !== "failed";
    this.removeButton.hidden = !final;
    this.openLink.hidden = job.state !== "done";
    this.openLink.href = `/jobs/${job.id}`;
    this.showThumbnail(job);
    if (final) feed.unfollowJob(job.id);
  }

  /** Redraw the bar and the stage line from the progress clock (which runs on between events). */
  tick() {
    const view = this.clock.read();
    this.progress.value = view.fraction;
    this.stage.textContent = this.job.state === "failed" ? "" : stageText(this.job, view);
  }

  /**
   * The server's thumbnail once the job exists (a JPEG for every format, TIFF included), unless the browser
   * shows the file itself: then nothing is fetched, and the server is not asked to make the thumbnail while
   * it is still answering other uploads.
   */
  showThumbnail(job) {
    const url = job.urls?.thumbnail;
    if (!url || this.preview.getAttribute("src") === url) return;
    if (this.preview.src.startsWith("blob:") && !this.preview.classList.contains("no-preview")) return;
    const blob = this.preview.src.startsWith("blob:") ? this.preview.src : null;
    this.preview.classList.remove("no-preview");
    this.preview.src = url;
    if (blob) URL.revokeObjectURL(blob);
  }

  /** Show an upload or subscribe error in the server's words, with a Retry. */
  fail(message) {
    this.node.dataset.state = "failed";
    this.status.textContent = "failed";
    this.status.className = "state state-failed";
    this.stage.textContent = "";
    this.error.textContent = message;
    this.error.hidden = false;
    this.cancelButton.hidden = true;
    this.retryButton.hidden = false;
    this.removeButton.hidden = false;
  }

  async cancel() {
    if (!this.job) return;
    this.cancelButton.disabled = true;
    try {
      const reply = await api.post(`/api/jobs/${this.job.id}/cancel`);
      if (reply && reply.id) this.update(reply);
    } catch (err) {
      showNotice(notices, err.message);
    } finally {
      this.cancelButton.disabled = false;
    }
  }

  /**
   * Send the photo again as a new job: the file this page holds or, for a failed job restored after a
   * reload, the original the server kept.
   */
  async retry() {
    this.retryButton.disabled = true;
    try {
      const file = this.file || (this.job && (await api.originalFile(this.job)));
      if (file) send(this, file, this.job);
    } catch (err) {
      this.fail(err.message);
    } finally {
      this.retryButton.disabled = false;
    }
  }

  remove() {
    if (this.job) {
      remember(this.job.id, false);
      cards.delete(this.job.id);
      feed.unfollowJob(this.job.id);
    }
    if (this.preview.src.startsWith("blob:")) URL.revokeObjectURL(this.preview.src);
    this.node.remove();
  }
}

// Running cards advance by time between the worker's events (the model stage sends none until it ends).
setInterval(() => {
  for (const card of cards.values()) if (card.clock.ticking) card.tick();
}, 500);

function track(card, job) {
  cards.set(job.id, card);
  card.update(job);
  if (!FINAL_STATES.has(job.state)) feed.followJob(job.id);
}

/** Queue a photo for its card, which then follows the new job; `previous` is the failed job a retry replaces. */
async function send(card, file, previous = null) {
  card.local("waiting", "Waiting to be sent");
  try {
    const job = await uploads.add(file, { onStart: () => card.local("uploading", "Sending…") });
    if (previous) {
      cards.delete(previous.id);
      remember(previous.id, false);
    }
    remember(job.id);
    track(card, job);
  } catch (err) {
    card.fail(err.message);
  }
}

/** Give each file its card at once; the queue sends them a few to a request, within the server's limits. */
function addFiles(fileList) {
  const files = [...fileList].filter((f) => f && f.size !== undefined);
  if (!files.length) return;
  for (const file of files) {
    const card = new JobCard(file.name || "pasted image", file);
    cardsRoot.prepend(card.node);
    send(card, file);
  }
}

let waitTimer = 0;

/** Say which limit the server gave and count down to when sending resumes by itself. */
function showWait(until, error) {
  clearInterval(waitTimer);
  const tick = () => {
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    const rest = uploads.waitingCount;
    showNotice(
      notices,
      `${error.message} Sending the ${rest === 1 ? "last photo" : `other ${rest} photos`} by itself in ${left} s.`,
      "waiting",
    );
  };
  tick();
  waitTimer = setInterval(tick, 1000);
}

function clearWait() {
  clearInterval(waitTimer);
  waitTimer = 0;
  notices.replaceChildren();
}

/** Re-read every card's job over HTTP (after a reconnect, events sent while offline are lost). */
async function refreshAll() {
  await Promise.all(
    [...cards.entries()].map(async ([id, card]) => {
      try {
        const job = await api.job(id);
        if (!feed.isFollowing(id) || feed.accept(job)) card.update(job);
      } catch (err) {
        if (err.status === 404) card.fail(err.message);
      }
    }),
  );
}

/** Bring back the cards of active jobs and of jobs uploaded in this tab, newest first. */
async function restore() {
  const wanted = new Set(remembered());
  const { jobs } = await api.listJobs({ limit: 100 });
  for (const job of jobs.slice().reverse()) {
    if (cards.has(job.id)) continue;
    if (!wanted.has(job.id) && FINAL_STATES.has(job.state)) continue;
    const card = new JobCard(job.filename || "photo", null);
    cardsRoot.prepend(card.node);
    track(card, job);
  }
}

input.addEventListener("change", () => {
  addFiles(input.files);
  input.value = "";
});
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (e) => {
    e.preventDefault();
    dropzone.classList.add("dragging");
  });
}
document.addEventListener("dragleave", (e) => {
  if (!e.relatedTarget) dropzone.classList.remove("dragging");
});
document.addEventListener("drop", (e) => {
  e.preventDefault();
  dropzone.classList.remove("dragging");
  addFiles(e.dataTransfer.files);
});
document.addEventListener("paste", (e) => {
  const files = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
  if (files.length) {
    e.preventDefault();
    addFiles(files);
  }
});

api
  .session()
  .then(restore)
  .then(() => document.body.setAttribute("data-ready", "true"))
  .catch((err) => showNotice(notices, err.message));
