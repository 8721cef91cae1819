/**
 * What the owner's result page and the shared page have in common: show a job's state until it is done,
 * then mount the viewer on its result.
 */
import { el, showNotice } from "./dom.js";
import { progressOf, stageText } from "./jobs.js";
import { Viewer } from "./viewer.js";

/** Show a job that is not done yet: its state word, stage and progress. */
export function showJobState(container, job) {
  container.replaceChildren(
    el(
      "div",
      { class: "job-state" },
      el("span", { class: `state state-${job.state}`, dataset: { testid: "job-status" } }, job.state),
      el("span", { class: "stage" }, stageText(job)),
      el("progress", { max: 1, value: progressOf(job), dataset: { testid: "job-progress" } }),
    ),
  );
}

/**
 * Mount the viewer; resolves once the photo is loaded and the overlay drawn (the root then carries
 * data-ready="true", which the browser tests wait for).
 */
export async function mountViewer(root, status, { result, imageUrl, filename }) {
  status.replaceChildren();
  try {
    const viewer = new Viewer(root, { result, imageUrl, filename });
    await viewer.ready;
    root.dataset.ready = "true";
    return viewer;
  } catch (err) {
    showNotice(status, err.message);
    return null;
  }
}

/** The page title from the job: its file name and what was found. */
export function titleFor(job) {
  return job.filename ? `${job.filename}` : "Result";
}
