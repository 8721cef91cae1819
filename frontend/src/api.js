/**
 * The HTTP API, as the pages use it: JSON in and out, the server's error messages kept word for word.
 *
 * Identity is the `maskweb_id` cookie set by `GET /api/session`; every state-changing request made with it
 * carries the `X-CSRF-Token` header from that same response.
 */

/**
 * An API call that failed: `message` is the server's own words, `status` the HTTP status, `code` its word,
 * `retryAfter` the seconds the server asked to wait (its Retry-After header; null when it sent none) and
 * `details` the rest of its error object (for instance the limit that was hit).
 */
export class ApiError extends Error {
  constructor(message, status, code, { retryAfter = null, details = {} } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.details = details;
  }
}

/**
 * Seconds to wait from a Retry-After header: a number of seconds or an HTTP date (RFC 9110 10.2.3).
 * @param {string | null} value
 * @param {number} [now] ms since the epoch
 * @returns {number | null} whole seconds, at least 0; null when absent or unreadable
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined || String(value).trim() === "") return null;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text);
  const when = Date.parse(text);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - now) / 1000));
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Turn a response into its JSON body, or throw ApiError with the server's message.
 * The server answers errors as `{"error": {"status", "code", "message"}}`; anything else (a proxy's HTML
 * page, a dropped connection) becomes a message naming the status.
 * @param {Response} response
 */
export async function readJson(response) {
  const text = await response.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    const error = body && typeof body === "object" ? body.error : null;
    const retryAfter = parseRetryAfter(response.headers?.get?.("Retry-After") ?? null);
    if (error && error.message) {
      const { message, status: _status, code, ...details } = error;
      throw new ApiError(message, response.status, code || null, { retryAfter, details });
    }
    throw new ApiError(
      `The server answered ${response.status} ${response.statusText || ""}`.trim() + ".",
      response.status,
      null,
      { retryAfter },
    );
  }
  if (text && body === null) throw new ApiError("The server sent a reply that is not JSON.", response.status, null);
  return body;
}

/**
 * An API client.
 * @param {{fetch?: typeof fetch, base?: string}} [options] `fetch` is injectable for tests
 */
export function createApi({ fetch: fetchImpl = globalThis.fetch.bind(globalThis), base = "" } = {}) {
  let session = null;

  async function call(method, path, { json, body, headers = {} } = {}) {
    const h = { Accept: "application/json", ...headers };
    if (UNSAFE.has(method)) {
      if (!session) await getSession();
      h["X-CSRF-Token"] = session.csrf_token;
    }
    let payload = body;
    if (json !== undefined) {
      h["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetchImpl(base + path, { method, headers: h, body: payload, credentials: "same-origin" });
    } catch (err) {
      throw new ApiError(`Could not reach the server (${err.message}).`, 0, "network");
    }
    return readJson(response);
  }

  /** `{user_id, csrf_token}`; sets the identity cookie on a first visit. Cached. */
  async function getSession() {
    if (!session) session = await call("GET", "/api/session");
    return session;
  }

  /**
   * Upload photos as new jobs, in one request: all of them are accepted or none is (a refusal names the
   * file at fault in `details.index` and `details.filename`).
   * @param {Array<{file: Blob, filename?: string}>} photos
   * @returns {Promise<object[]>} the created jobs in the order of `photos` (`GET /api/jobs/{id}` shape)
   */
  async function uploadImages(photos) {
    const form = new FormData();
    for (const { file, filename } of photos) form.append("image", file, filename || file.name || "pasted-image.png");
    const reply = await call("POST", "/api/jobs", { body: form });
    const jobs = Array.isArray(reply?.jobs) ? reply.jobs : [];
    if (jobs.length !== photos.length || !jobs.every((job) => job && job.id)) {
      throw new ApiError(`The server did not return the ${photos.length === 1 ? "new job" : "new jobs"}.`, 0, null);
    }
    return jobs;
  }

  return {
    session: getSession,
    get: (path) => call("GET", path),
    /** One job (`GET /api/jobs/{id}`). */
    job: (id) => call("GET", `/api/jobs/${encodeURIComponent(id)}`),
    post: (path, json) => call("POST", path, { json }),
    delete: (path) => call("DELETE", path),
    uploadImages,

    /**
     * Upload one image as a new job.
     * @param {Blob} file
     * @param {string} [filename]
     * @returns {Promise<object>} the created job (`GET /api/jobs/{id}` shape)
     */
    async uploadImage(file, filename = file.name || "pasted-image.png") {
      const [job] = await uploadImages([{ file, filename }]);
      return job;
    },

    /**
     * A job's original photo (as the server kept it) as a File named like the upload, to send it again.
     * @param {{id: string, filename?: string, urls?: {image?: string}}} job
     * @returns {Promise<File>}
     */
    async originalFile(job) {
      let response;
      try {
        response = await fetchImpl(base + (job.urls?.image || `/api/jobs/${job.id}/image`), { credentials: "same-origin" });
      } catch (err) {
        throw new ApiError(`Could not reach the server (${err.message}).`, 0, "network");
      }
      if (!response.ok) await readJson(response);
      const type = response.headers.get("Content-Type") || "image/png";
      return new File([await response.blob()], job.filename || "photo.png", { type });
    },

    /**
     * One page of the visitor's jobs, newest first.
     * @param {{cursor?: string|null, className?: string|null, limit?: number}} [query]
     * @returns {Promise<{jobs: object[], next_cursor: string|null}>}
     */
    async listJobs({ cursor = null, className = null, limit = 24 } = {}) {
      const params = new URLSearchParams({ limit: String(limit) });
      if (cursor) params.set("cursor", cursor);
      if (className) params.set("class", className);
      const reply = await call("GET", `/api/jobs?${params}`);
      return { jobs: reply.jobs || [], next_cursor: reply.next_cursor || null };
    },
  };
}
