/**
 * What the owner's result page and the shared page have in common: show a job's state until it is done,
 * then mount the viewer on its result.
 */
import { el, showNotice } from "./dom.js";
import { stageText } from "./jobs.js";
import { ProgressClock } from "./progress.js";
import { Viewer } from "./viewer.js";

const clock = new ProgressClock();
let ticker = 0;

/** Show a job that is not done yet: its state word, stage, overall progress and time left, kept moving by
 * the progress clock between events while it runs. */
export function showJobState(container, job) {
  clock.update(job);
  const stage = el("span", { class: "stage" });
  const bar = el("progress", { max: 1, value: 0, dataset: { testid: "job-progress" }, "aria-label": "Progress" });
  const draw = () => {
    const view = clock.read();
    bar.value = view.fraction;
    stage.textContent = stageText(job, view);
  };
  draw();
  container.replaceChildren(
    el("div", { class: "job-state" }, el("span", { class: `state state-${job.state}`, dataset: { testid: "job-status" } }, job.state), stage, bar),
  );
  clearInterval(ticker);
  ticker = clock.ticking ? setInterval(draw, 500) : 0;
}

/** Stop the progress display's clock (the job is done and the viewer takes over). */
export function stopJobState() {
  clearInterval(ticker);
  ticker = 0;
}

const mounted = new WeakMap(); // root -> its viewer, so mounting again first tears the old one down

/**
 * Mount the viewer; resolves once the photo is loaded and the overlay drawn. The root is aria-busy until
 * then (assistive technology waits for it; so do the browser tests).
 */
export async function mountViewer(root, status, { result, imageUrl, filename }) {
  stopJobState();
  status.replaceChildren();
  mounted.get(root)?.destroy();
  root.setAttribute("aria-busy", "true");
  try {
    const viewer = new Viewer(root, { result, imageUrl, filename });
    mounted.set(root, viewer);
    await viewer.ready;
    return viewer;
  } catch (err) {
    showNotice(status, err.message);
    return null;
  } finally {
    root.setAttribute("aria-busy", "false");
  }
}

/** The heading from the job: its file name. */
export function titleFor(job) {
  return job.filename ? `${job.filename}` : "Result";
}

/** The tab's title: the file name and what was found (or where the job is), so tabs can be told apart. */
export function pageTitle(job) {
  const name = job.filename || "Result";
  if (job.state === "done") {
    const n = job.instance_count ?? 0;
    return `${name}: ${n} object${n === 1 ? "" : "s"} · maskweb`;
  }
  return `${name}: ${job.state} · maskweb`;
}
