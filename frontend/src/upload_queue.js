/**
 * Sending photos a few at a time, within the server's limits.
 *
 * At most `parallel` uploads are in flight. When the server answers 429 (too many requests) the queue stops
 * starting new uploads, puts the refused photo back at the front, waits for the Retry-After the server gave
 * (or `fallbackWaitS` when it gave none) and then goes on by itself; `onWait` tells the page why and for how
 * long, `onResume` when sending starts again. Any other failure belongs to that photo alone: its promise
 * rejects and the rest carry on.
 */

/**
 * @param {object} options
 * @param {(file: Blob) => Promise<object>} options.upload sends one photo; rejects with ApiError
 * @param {number} [options.parallel] uploads in flight at most
 * @param {number} [options.fallbackWaitS] wait after a 429 without Retry-After, seconds
 * @param {(wait: {seconds: number, until: number, error: Error}) => void} [options.onWait]
 * @param {() => void} [options.onResume]
 * @param {(ms: number) => Promise<void>} [options.sleep] injectable for tests
 * @param {() => number} [options.now] ms clock, injectable for tests
 */
export function createUploadQueue({
  upload,
  parallel = 3,
  fallbackWaitS = 10,
  onWait = () => {},
  onResume = () => {},
  sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now = () => Date.now(),
}) {
  const pending = [];
  let running = 0;
  let pausedUntil = 0;
  let waiting = false;

  function pause(error) {
    const seconds = error.retryAfter ?? fallbackWaitS;
    pausedUntil = Math.max(pausedUntil, now() + seconds * 1000);
    waiting = true;
    onWait({ seconds: Math.ceil((pausedUntil - now()) / 1000), until: pausedUntil, error });
  }

  async function worker() {
    running += 1;
    try {
      while (pending.length) {
        while (now() < pausedUntil) await sleep(pausedUntil - now());
        if (waiting) {
          waiting = false;
          onResume();
        }
        const item = pending.shift();
        if (!item) break;
        item.onStart?.();
        try {
          item.resolve(await upload(item.file));
        } catch (error) {
          if (error && error.status === 429) {
            pending.unshift(item);
            pause(error);
          } else {
            item.reject(error);
          }
        }
      }
    } finally {
      running -= 1;
    }
  }

  return {
    /**
     * Queue one photo.
     * @param {Blob} file
     * @param {{onStart?: () => void}} [hooks] onStart: its request is about to be sent
     * @returns {Promise<object>} the created job; rejects with the server's error (never for a 429)
     */
    add(file, { onStart } = {}) {
      const done = new Promise((resolve, reject) => pending.push({ file, resolve, reject, onStart }));
      if (running < parallel) worker();
      return done;
    },
    /** Photos not yet sent. */
    get waitingCount() {
      return pending.length;
    },
  };
}
