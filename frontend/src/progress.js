/**
 * How far a running job is, overall, and how long it has left: each stage weighs what recent jobs took in it
 * (`job.stage_estimates`, seconds per stage, measured by the workers), and within a stage progress is the
 * larger of what the worker reported and the time spent against the estimate (capped below the stage's end,
 * which only the worker can announce). The model stage reports nothing until it ends, so time is what moves
 * the bar there.
 *
 * The clock runs on in the page between events: `sinceS` is the time since the job state was received,
 * added to the server's `stage_elapsed_s`. `ProgressClock` keeps what was shown from ever going backwards.
 */

export const PIPELINE = ["decode", "model", "masks", "saving"];

/** Weights before any job has finished (no measurements yet): the model dominates. */
const DEFAULT_SECONDS = { decode: 0.5, model: 6, masks: 1, saving: 0.5 };
/** Time alone never takes a stage past this: the worker's own report ends it. */
const TIME_CAP = 0.95;

/**
 * @param {{state: string, stage: string | null, progress?: number, stage_estimates?: object | null,
 *   stage_elapsed_s?: number | null}} job
 * @param {number} [sinceS] seconds since this state was received
 * @returns {{fraction: number, secondsLeft: number | null}} fraction 0..1; secondsLeft null when no job has
 *   finished yet to estimate from
 */
export function overallProgress(job, sinceS = 0) {
  if (job.state === "done") return { fraction: 1, secondsLeft: 0 };
  if (job.state !== "running") return { fraction: 0, secondsLeft: null };
  const measured = job.stage_estimates || null;
  const seconds = PIPELINE.map((stage) => Math.max(0, measured?.[stage] ?? DEFAULT_SECONDS[stage]));
  const total = seconds.reduce((a, b) => a + b, 0) || 1;
  const index = Math.max(0, PIPELINE.indexOf(job.stage));
  const before = seconds.slice(0, index).reduce((a, b) => a + b, 0);
  const expected = seconds[index];
  const elapsed = Math.max(0, (job.stage_elapsed_s ?? 0) + sinceS);
  const byTime = expected > 0 ? Math.min(TIME_CAP, elapsed / expected) : 0;
  const within = Math.min(1, Math.max(Number(job.progress) || 0, byTime));
  const after = seconds.slice(index + 1).reduce((a, b) => a + b, 0);
  return {
    fraction: Math.min(1, (before + expected * within) / total),
    secondsLeft: measured ? Math.max(0, expected - elapsed) + after : null,
  };
}

/** "about 12 s left", "about 3 min left", "almost done"; "" when unknown. */
export function timeLeftText(secondsLeft) {
  if (secondsLeft === null || secondsLeft === undefined) return "";
  if (secondsLeft < 1.5) return "almost done";
  if (secondsLeft < 90) return `about ${Math.round(secondsLeft)} s left`;
  return `about ${Math.round(secondsLeft / 60)} min left`;
}

/** One job's progress as shown: never lower than before, while the job is the same one. */
export class ProgressClock {
  constructor(now = () => performance.now()) {
    this.now = now;
    this.job = null;
    this.received = 0;
    this.shown = 0;
  }

  /** A new state of the job arrived. */
  update(job) {
    if (this.job && this.job.id !== job.id) this.shown = 0; // a retry: another job
    this.job = job;
    this.received = this.now();
  }

  /** What to show now: {fraction, secondsLeft}, fraction never below what was shown before. */
  read() {
    if (!this.job) return { fraction: 0, secondsLeft: null };
    const view = overallProgress(this.job, (this.now() - this.received) / 1000);
    if (this.job.state === "running" || this.job.state === "done") this.shown = Math.max(this.shown, view.fraction);
    return { fraction: this.job.state === "running" || this.job.state === "done" ? this.shown : view.fraction, secondsLeft: view.secondsLeft };
  }

  /** Whether the display should keep ticking (the clock moves only while running). */
  get ticking() {
    return this.job?.state === "running";
  }
}
