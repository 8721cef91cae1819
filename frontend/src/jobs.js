/** How a job's state reads on a card: the state word, the stage in words, and whether it can change. */
import { overallProgress, timeLeftText } from "./progress.js";


export const FINAL_STATES = new Set(["done", "failed", "cancelled"]);

const STAGE_WORDS = {
  waiting: "Waiting for a worker",
  decode: "Reading the image",
  model: "Finding objects",
  masks: "Drawing masks",
  saving: "Saving the result",
};

/**
 * One line describing where a job is: for a running one its stage, overall percent and time left.
 * @param {object} job the `GET /api/jobs/{id}` object
 * @param {{fraction: number, secondsLeft: number | null}} [view] what progress.js says (a ProgressClock's
 *   reading on a live card)
 * @returns {string}
 */
export function stageText(job, view = overallProgress(job)) {
  switch (job.state) {
    case "queued":
      return job.queue_position ? `Number ${job.queue_position} in the queue` : "Waiting in the queue";
    case "running": {
      const words = STAGE_WORDS[job.stage] || "Working";
      const left = timeLeftText(view.secondsLeft);
      return `${words}… ${Math.round(view.fraction * 100)}%${left ? ` · ${left}` : ""}`;
    }
    case "done": {
      const n = job.instance_count ?? 0;
      const classes = (job.classes || []).slice(0, 6).join(", ");
      return `${n} object${n === 1 ? "" : "s"} found${classes ? `: ${classes}` : ""}`;
    }
    case "failed":
      return job.error || "The job failed.";
    case "cancelled":
      return "Cancelled";
    default:
      return job.state || "";
  }
}
