/**
 * Sending photos a few requests at a time, several photos per request, within the server's limits.
 *
 * Photos added in one task (a drop, a pick, a paste) go together: each request carries up to `maxPhotos`
 * of them and up to `maxBytes` (a photo larger than that goes alone), and at most `parallel` requests are in
 * flight. One request of five photos costs the server about a third of five requests of one.
 *
 * The server takes a request whole or not at all, so a refusal is sorted out here, photo by photo:
 * - 429 (too many requests): the queue stops starting new requests, puts the refused photos back at the
 *   front, waits for the Retry-After the server gave (or `fallbackWaitS` when it gave none) and then goes on
 *   by itself; `onWait` tells the page why and for how long, `onResume` when sending starts again.
 * - a refusal that names one file of several (`details.index`, a 4xx: not an image, too large, too many
 *   pixels): the others are sent again without it, and it is sent again on its own, so that what the server
 *   says of it is about that photo alone (in words that name it, not "file 3 of 5").
 * - 413 for the request as a whole (over the server's request size): its photos are sent again one by one.
 * - anything else (a quota, a full disk, a network failure): every photo of that request is rejected with it.
 */

/**
 * @param {object} options
 * @param {(photos: Blob[]) => Promise<object[]>} options.upload sends photos in one request; resolves their
 *   jobs in the same order, rejects with ApiError
 * @param {number} [options.parallel] requests in flight at most
 * @param {number} [options.maxPhotos] photos in one request at most
 * @param {number} [options.maxBytes] bytes of photos in one request at most (unless one photo is larger)
 * @param {number} [options.fallbackWaitS] wait after a 429 without Retry-After, seconds
 * @param {(wait: {seconds: number, until: number, error: Error}) => void} [options.onWait]
 * @param {() => void} [options.onResume]
 * @param {(ms: number) => Promise<void>} [options.sleep] injectable for tests
 * @param {() => number} [options.now] ms clock, injectable for tests
 */
export function createUploadQueue({
  upload,
  parallel = 3,
  maxPhotos = 5,
  maxBytes = 16 * 1024 * 1024,
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
  let starting = false;

  function pause(error) {
    const seconds = error.retryAfter ?? fallbackWaitS;
    pausedUntil = Math.max(pausedUntil, now() + seconds * 1000);
    waiting = true;
    onWait({ seconds: Math.ceil((pausedUntil - now()) / 1000), until: pausedUntil, error });
  }

  /** The next request's photos, from the front of the queue. */
  function nextRequest() {
    const photos = [pending.shift()];
    let bytes = photos[0].file.size || 0;
    while (pending.length && photos.length < maxPhotos && !photos[0].alone && !pending[0].alone) {
      const size = pending[0].file.size || 0;
      if (bytes + size > maxBytes) break;
      bytes += size;
      photos.push(pending.shift());
    }
    return photos;
  }

  /** Sort out a refused request: which photos fail, which go back to the front of the queue. */
  function refused(photos, error) {
    const index = error?.details?.index;
    if (error && error.status === 429) {
      pending.unshift(...photos);
      pause(error);
    } else if (photos.length > 1 && Number.isInteger(index) && photos[index] && error.status >= 400 && error.status < 500) {
      photos[index].alone = true;
      pending.unshift(...photos.filter((_, i) => i !== index), photos[index]);
    } else if (photos.length > 1 && error && error.status === 413) {
      for (const photo of photos) photo.alone = true;
      pending.unshift(...photos);
    } else {
      for (const photo of photos) photo.reject(error);
    }
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
        if (!pending.length) break;
        const photos = nextRequest();
        for (const photo of photos) photo.onStart?.();
        let jobs;
        try {
          jobs = await upload(photos.map((photo) => photo.file));
        } catch (error) {
          refused(photos, error);
          continue;
        }
        photos.forEach((photo, i) => photo.resolve(jobs[i]));
      }
    } finally {
      running -= 1;
    }
  }

  /** Start senders once the current task has added its photos, so that they share requests. */
  function startSoon() {
    if (starting) return;
    starting = true;
    queueMicrotask(() => {
      starting = false;
      while (running < parallel && pending.length) worker(); // each takes its photos before it returns
    });
  }

  return {
    /**
     * Queue one photo.
     * @param {Blob} file
     * @param {{onStart?: () => void}} [hooks] onStart: its request is about to be sent (again after a
     *   refusal of another photo it went with)
     * @returns {Promise<object>} the created job; rejects with the server's error (never for a 429)
     */
    add(file, { onStart } = {}) {
      const done = new Promise((resolve, reject) => pending.push({ file, resolve, reject, onStart, alone: false }));
      startSoon();
      return done;
    },
    /** Photos not yet sent. */
    get waitingCount() {
      return pending.length;
    },
  };
}
