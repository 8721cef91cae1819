/** How a job's state reads on a card: the state word, the stage in words, and whether it can change. */

export const FINAL_STATES = new Set(["done", "failed", "cancelled"]);

const STAGE_WORDS = {
  waiting: "Waiting for a worker",
  decode: "Reading the image",
  model: "Finding objects",
  masks: "Drawing masks",
  saving: "Saving the result",
};

/**
 * One line describing where a job is.
 * @param {object} job the `GET /api/jobs/{id}` object
 * @returns {string}
 */
export function stageText(job) {
  switch (job.state) {
    case "queued":
      return job.queue_position ? `Number ${job.queue_position} in the queue` : "Waiting in the queue";
    case "running": {
      const words = STAGE_WORDS[job.stage] || "Working";
      return `${words}… ${Math.round((job.progress || 0) * 100)}%`;
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

/** Progress 0..1 for the bar: a finished job is full, a waiting one empty. */
export function progressOf(job) {
  if (job.state === "done") return 1;
  if (job.state === "queued") return 0;
  return Math.max(0, Math.min(1, job.progress || 0));
}
