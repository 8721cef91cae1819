/**
 * Upload page: drop, pick or paste photos; one card per photo follows its job live over Socket.IO.
 * Cards survive a reload (active jobs and this tab's recent jobs are read back from `GET /api/jobs`) and a
 * lost connection (the feed resubscribes and every card re-reads its job over HTTP).
 */
import { io } from "/vendor/socket.io.esm.min.js";

import { createApi } from "./api.js";
import { el, showNotice } from "./dom.js";
import { FINAL_STATES, progressOf, stageText } from "./jobs.js";
import { createJobFeed } from "./socket.js";

const api = createApi();
const cardsRoot = document.getElementById("cards");
const notices = document.getElementById("notices");
const input = document.getElementById("upload-input");
const dropzone = document.getElementById("dropzone");
const REMEMBERED = "maskweb.upload.jobs";
const PARALLEL_UPLOADS = 3;

/** @type {Map<string, JobCard>} */
const cards = new Map();

const feed = createJobFeed({
  io,
  onJob: (job) => cards.get(job.id)?.update(job),
  onError: (key, error) => cards.get(key.replace(/^job:/, ""))?.fail(error.message),
  onResync: () => refreshAll(),
  onConnection: (connected) => document.body.classList.toggle("offline", !connected),
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
  constructor(filename, previewUrl) {
    this.job = null;
    this.preview = el("img", { class: "preview", alt: "", src: previewUrl || "" });
    // A file the browser cannot show (or the server rejected) keeps an empty frame, not a broken image.
    this.preview.addEventListener("error", () => this.preview.classList.add("no-preview"));
    this.title = el("div", { class: "card-title" }, filename);
    this.status = el("span", { class: "state", dataset: { testid: "job-status" } }, "uploading");
    this.stage = el("span", { class: "stage" }, "Uploading…");
    this.progress = el("progress", { max: 1, value: 0, dataset: { testid: "job-progress" }, "aria-label": `Progress of ${filename}` });
    this.error = el("p", { class: "card-error", role: "alert", hidden: true });
    this.cancelButton = el("button", { type: "button", class: "button small", hidden: true, onclick: () => this.cancel() }, "Cancel");
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
        el("div", { class: "card-actions" }, this.cancelButton, this.openLink, this.removeButton),
      ),
    );
  }

  /** Show a job state (from the upload reply, an ack, an event or an HTTP read). */
  update(job) {
    const first = !this.job;
    this.job = job;
    this.node.dataset.jobId = job.id;
    this.node.dataset.state = job.state;
    this.title.textContent = job.filename || this.title.textContent;
    this.status.textContent = job.state;
    this.status.className = `state state-${job.state}`;
    this.stage.textContent = job.state === "failed" ? "" : stageText(job);
    this.progress.value = progressOf(job);
    this.error.hidden = job.state !== "failed";
    this.error.textContent = job.state === "failed" ? job.error || "The job failed." : "";
    const final = FINAL_STATES.has(job.state);
    this.cancelButton.hidden = final;
    this.removeButton.hidden = !final;
    this.openLink.hidden = job.state !== "done";
    this.openLink.href = `/jobs/${job.id}`;
    if (first && !this.preview.getAttribute("src") && job.urls) {
      this.preview.src = job.urls.thumbnail || job.urls.image;
      this.preview.addEventListener("error", () => job.urls.image && (this.preview.src = job.urls.image), { once: true });
    }
    if (job.state === "done" && job.urls?.thumbnail && this.preview.src.startsWith("blob:")) {
      URL.revokeObjectURL(this.preview.src);
      this.preview.src = job.urls.thumbnail;
    }
    if (final) feed.unfollowJob(job.id);
  }

  /** Show an upload or subscribe error in the server's words. */
  fail(message) {
    this.node.dataset.state = "failed";
    this.status.textContent = "failed";
    this.status.className = "state state-failed";
    this.stage.textContent = "";
    this.error.textContent = message;
    this.error.hidden = false;
    this.cancelButton.hidden = true;
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

function track(card, job) {
  cards.set(job.id, card);
  card.update(job);
  if (!FINAL_STATES.has(job.state)) feed.followJob(job.id);
}

async function uploadOne(file) {
  const card = new JobCard(file.name || "pasted image", URL.createObjectURL(file));
  cardsRoot.prepend(card.node);
  try {
    const job = await api.uploadImage(file);
    remember(job.id);
    track(card, job);
  } catch (err) {
    card.fail(err.message);
  }
}

/** Upload files a few at a time; each gets its card at once. */
async function addFiles(fileList) {
  const files = [...fileList].filter((f) => f && f.size !== undefined);
  if (!files.length) return;
  notices.replaceChildren();
  let next = 0;
  const worker = async () => {
    while (next < files.length) await uploadOne(files[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_UPLOADS, files.length) }, worker));
}

/** Re-read every card's job over HTTP (after a reconnect, events sent while offline are lost). */
async function refreshAll() {
  await Promise.all(
    [...cards.entries()].map(async ([id, card]) => {
      try {
        card.update(await api.get(`/api/jobs/${id}`));
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
