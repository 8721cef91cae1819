import { test } from "node:test";
import assert from "node:assert/strict";

import { ApiError, createApi } from "../src/api.js";

/** A fake fetch that answers from a table and records the requests. */
function fakeFetch(routes) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, ...init });
    const key = `${init.method} ${url.split("?")[0]}`;
    const [status, body, statusText = ""] = routes[key] || [404, { error: { status: 404, code: "not_found", message: "nope" } }];
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return { ok: status >= 200 && status < 300, status, statusText, text: async () => text };
  };
  return { fetch, calls };
}

test("a server error becomes an ApiError carrying the server's own message and code", async () => {
  const { fetch } = fakeFetch({
    "GET /api/jobs/abc": [404, { error: { status: 404, code: "not_found", message: "No job abc here." } }],
  });
  const api = createApi({ fetch });
  await assert.rejects(api.get("/api/jobs/abc"), (err) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.message, "No job abc here.");
    assert.equal(err.status, 404);
    assert.equal(err.code, "not_found");
    return true;
  });
});

test("a non-JSON error page still gives a message with the status", async () => {
  const { fetch } = fakeFetch({ "GET /api/x": [502, "<html>bad gateway</html>", "Bad Gateway"] });
  await assert.rejects(createApi({ fetch }).get("/api/x"), /502 Bad Gateway/);
});

test("state-changing requests fetch the session once and carry its CSRF token", async () => {
  const { fetch, calls } = fakeFetch({
    "GET /api/session": [200, { user_id: "u1", csrf_token: "tok-123" }],
    "POST /api/jobs/j1/cancel": [200, { id: "j1", state: "cancelled" }],
    "DELETE /api/jobs/j1": [200, { deleted: true }],
  });
  const api = createApi({ fetch });
  assert.equal((await api.post("/api/jobs/j1/cancel")).state, "cancelled");
  await api.delete("/api/jobs/j1");
  assert.deepEqual(calls.map((c) => `${c.method} ${c.url}`), [
    "GET /api/session",
    "POST /api/jobs/j1/cancel",
    "DELETE /api/jobs/j1",
  ]);
  assert.equal(calls[1].headers["X-CSRF-Token"], "tok-123");
  assert.equal(calls[2].headers["X-CSRF-Token"], "tok-123");
  assert.equal(calls[0].headers["X-CSRF-Token"], undefined);
});

test("upload sends the file as multipart field `image` and returns the job", async () => {
  const { fetch, calls } = fakeFetch({
    "GET /api/session": [200, { user_id: "u1", csrf_token: "t" }],
    "POST /api/jobs": [202, { jobs: [{ id: "j9", state: "queued", queue_position: 3 }] }],
  });
  const job = await createApi({ fetch }).uploadImage(new Blob(["x"], { type: "image/png" }), "a.png");
  assert.equal(job.id, "j9");
  const form = calls[1].body;
  assert.ok(form instanceof FormData);
  assert.equal(form.get("image").name, "a.png");
});

test("several photos go in one request, each a field `image` in order, and come back as their jobs", async () => {
  const { fetch, calls } = fakeFetch({
    "GET /api/session": [200, { user_id: "u1", csrf_token: "t" }],
    "POST /api/jobs": [202, { jobs: [{ id: "j1" }, { id: "j2" }, { id: "j3" }] }],
  });
  const photos = ["a.png", "b.jpg", ""].map((name) => ({ file: new File(["x"], name || "ignored", { type: "image/png" }), filename: name || undefined }));
  photos[2].file = new Blob(["x"], { type: "image/png" }); // pasted: no name of its own
  const jobs = await createApi({ fetch }).uploadImages(photos);
  assert.deepEqual(jobs.map((j) => j.id), ["j1", "j2", "j3"]);
  assert.deepEqual(calls[1].body.getAll("image").map((f) => f.name), ["a.png", "b.jpg", "pasted-image.png"]);
});

test("an upload answered with fewer jobs than photos is an error, not a photo left without its job", async () => {
  const { fetch } = fakeFetch({
    "GET /api/session": [200, { user_id: "u1", csrf_token: "t" }],
    "POST /api/jobs": [202, { jobs: [{ id: "j1" }] }],
  });
  const photos = [{ file: new Blob(["x"]), filename: "a.png" }, { file: new Blob(["y"]), filename: "b.png" }];
  await assert.rejects(createApi({ fetch }).uploadImages(photos), /did not return the new jobs/);
});

test("upload rejection keeps the server's words (e.g. the size limit)", async () => {
  const message = "The file is 31.0 MB; the limit is 25 MB per file.";
  const { fetch } = fakeFetch({
    "GET /api/session": [200, { user_id: "u1", csrf_token: "t" }],
    "POST /api/jobs": [413, { error: { status: 413, code: "too_large", message } }],
  });
  await assert.rejects(createApi({ fetch }).uploadImage(new Blob(["x"]), "big.jpg"), { message, code: "too_large" });
});

test("gallery pages pass cursor and class filter", async () => {
  const { fetch, calls } = fakeFetch({ "GET /api/jobs": [200, { jobs: [{ id: "a" }], next_cursor: "c2" }] });
  const page = await createApi({ fetch }).listJobs({ cursor: "c1", className: "teddy bear", limit: 10 });
  assert.deepEqual(page, { jobs: [{ id: "a" }], next_cursor: "c2" });
  const query = new URL(calls[0].url, "http://x").searchParams;
  assert.equal(query.get("cursor"), "c1");
  assert.equal(query.get("class"), "teddy bear");
  assert.equal(query.get("limit"), "10");
});

test("a network failure is reported as such", async () => {
  const fetch = async () => {
    throw new TypeError("Failed to fetch");
  };
  await assert.rejects(createApi({ fetch }).get("/api/jobs"), { code: "network" });
});

test("a 429 carries the server's Retry-After and the rest of its error object", async () => {
  const fetch = async () => ({
    ok: false,
    status: 429,
    statusText: "Too Many Requests",
    headers: new Headers({ "Retry-After": "3" }),
    text: async () => JSON.stringify({ error: { status: 429, code: "rate_limited", message: "Too many requests: the limit is 2 per 3 second.", limit: "2 per 3 second" } }),
  });
  await assert.rejects(createApi({ fetch }).get("/api/jobs"), (err) => {
    assert.equal(err.status, 429);
    assert.equal(err.retryAfter, 3);
    assert.deepEqual(err.details, { limit: "2 per 3 second" });
    return true;
  });
});
