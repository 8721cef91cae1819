"""The simulated users of a load run: each talks to the server only through the HTTP API and Socket.IO, as the
page does. Import only in a gevent-patched process (``run.py`` patches first): every player is a greenlet, so
one process plays a thousand clients.

- ``Player``: an identity (``GET /api/session``: cookie + CSRF token) with one Socket.IO connection over
  WebSocket; ``upload`` POSTs images (timing the acknowledgement), ``follow`` subscribes to jobs and records
  every ``job`` event with its delivery latency (``emitted_at`` stamped by the publisher, same machine clock);
  ``wait_done`` waits for every followed job to reach a final state.
- ``Watcher``: a bare Socket.IO connection following one job through a share link (the 1,000-sockets run).
"""

from __future__ import annotations

import time

import gevent
import requests
import socketio
from gevent.event import Event
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

FINAL = ("done", "failed", "cancelled")


class LoadError(RuntimeError):
    pass


class _Socket:
    """A Socket.IO client that records ``job`` events: ``(job_id, state, latency_s)``. As the page does
    (frontend/src/socket.js), an event whose ``revision`` is below the highest received for its job arrived
    out of order: it is counted in ``out_of_order`` and otherwise ignored."""

    def __init__(self, base_url: str, headers: dict | None = None, auth: dict | None = None):
        self.events: list[tuple[str, str, float]] = []
        self.out_of_order = 0
        self._revisions: dict[str, int] = {}
        self.final: dict[str, str] = {}
        self.changed = Event()
        self.client = socketio.Client(reconnection=False, request_timeout=60)
        self.client.on("job", self._on_job)
        self.client.connect(
            base_url, transports=["websocket"], headers=headers or {}, auth=auth, wait_timeout=60
        )

    def _on_job(self, data):
        latency = time.time() - data["emitted_at"] if "emitted_at" in data else None
        revision = data.get("revision")
        if isinstance(revision, int):
            if revision < self._revisions.get(data["id"], -1):
                self.out_of_order += 1
                return
            self._revisions[data["id"]] = revision
        self.events.append((data["id"], data["state"], latency))
        if data["state"] in FINAL:
            self.final[data["id"]] = data["state"]
        self.changed.set()

    def subscribe(self, payload: dict) -> dict:
        ack = self.client.call("subscribe", payload, timeout=60)
        if not ack or not ack.get("ok"):
            raise LoadError(f"subscribe {payload} refused: {ack}")
        if ack["job"]["state"] in FINAL:
            self.final[ack["job"]["id"]] = ack["job"]["state"]
            self.changed.set()
        return ack["job"]

    def subscribe_jobs(self, job_ids: list[str]) -> list[dict]:
        """Follow several of one's jobs with one message (as the page does with jobs it follows together)."""
        ack = self.client.call("subscribe", {"job_ids": job_ids}, timeout=60)
        if not ack or not ack.get("ok") or ack.get("refused"):
            raise LoadError(f"subscribe {job_ids} refused: {ack}")
        for job in ack["jobs"]:
            if job["state"] in FINAL:
                self.final[job["id"]] = job["state"]
                self.changed.set()
        return ack["jobs"]

    def wait_final(self, job_ids: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(j in self.final for j in job_ids):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [j for j in job_ids if j not in self.final]
                raise LoadError(f"{len(missing)} jobs not final after {timeout_s}s, e.g. {missing[:3]}")
            self.changed.clear()
            self.changed.wait(min(left, 5))

    def latencies(self) -> list[float]:
        return [lat for _, _, lat in self.events if lat is not None]

    def close(self) -> None:
        try:
            self.client.disconnect()
        except Exception:  # already gone: nothing to release
            pass


class Player:
    """One user of the site (cookie identity, CSRF header, one socket)."""

    def __init__(self, base_url: str, name: str, socket: bool = True):
        self.base_url, self.name = base_url, name
        self.http = requests.Session()
        # A keep-alive connection the server closed after its idle timeout (gunicorn: 2 s) can be reset just as
        # a request reuses it; idempotent requests are sent again on a fresh one, as browsers do (POST is not).
        self.http.mount("http://", HTTPAdapter(max_retries=Retry(total=2, status_forcelist=())))
        session = self._checked(self.http.get(base_url + "/api/session", timeout=60), 200)
        self.user_id = session["user_id"]
        self.http.headers["X-CSRF-Token"] = session["csrf_token"]
        self.upload_acks: list[float] = []
        self.jobs: list[dict] = []
        self.first_upload_at: float | None = None
        self.done_at: float | None = None
        self.socket = None
        if socket:
            cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
            self.socket = _Socket(base_url, headers={"Cookie": cookie})

    @staticmethod
    def _checked(response: requests.Response, status: int) -> dict:
        if response.status_code != status:
            raise LoadError(
                f"{response.request.method} {response.url}: {response.status_code} {response.text}"
            )
        return response.json()

    def upload(self, images: list[bytes]) -> list[dict]:
        files = [("image", (f"img{i}.png", data, "image/png")) for i, data in enumerate(images)]
        started = time.perf_counter()
        if self.first_upload_at is None:
            self.first_upload_at = time.monotonic()
        response = self.http.post(self.base_url + "/api/jobs", files=files, timeout=120)
        self.upload_acks.append(time.perf_counter() - started)
        jobs = self._checked(response, 202)["jobs"]
        self.jobs += jobs
        return jobs

    def read_session(self) -> float:
        """GET /api/session as a page does when it opens; returns how long the answer took (seconds)."""
        started = time.perf_counter()
        response = self.http.get(self.base_url + "/api/session", timeout=60)
        elapsed = time.perf_counter() - started
        self._checked(response, 200)
        return elapsed

    def follow(self, jobs: list[dict]) -> None:
        if len(jobs) == 1:
            self.socket.subscribe({"job_id": jobs[0]["id"]})
        elif jobs:
            self.socket.subscribe_jobs([job["id"] for job in jobs])

    def wait_done(self, timeout_s: float) -> None:
        self.socket.wait_final([j["id"] for j in self.jobs], timeout_s)
        self.done_at = time.monotonic()

    def final_jobs(self) -> list[dict]:
        """The user's jobs as the API shows them now, each with ``user``."""
        out = []
        for job in self.jobs:
            body = self._checked(self.http.get(f"{self.base_url}/api/jobs/{job['id']}", timeout=60), 200)
            out.append({**body, "user": self.name})
        return out

    def share(self, job_id: str) -> str:
        return self._checked(self.http.post(f"{self.base_url}/api/jobs/{job_id}/share", timeout=60), 201)[
            "token"
        ]

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        self.http.close()


class Watcher(_Socket):
    """A page following one shared job (no identity of its own)."""

    def __init__(self, base_url: str, share_token: str):
        super().__init__(base_url, auth={"share_token": share_token})
        self.job = self.subscribe({"share_token": share_token})


def spawn_all(count: int, make, concurrency: int = 50) -> tuple[list, list[BaseException]]:
    """Run ``make(i)`` for i in range(count), ``concurrency`` at a time; returns (results, errors)."""
    from gevent.pool import Pool

    pool = Pool(concurrency)
    greenlets = [pool.spawn(make, i) for i in range(count)]
    gevent.joinall(greenlets)
    results = [g.value for g in greenlets if g.successful()]
    errors = [g.exception for g in greenlets if not g.successful()]
    return results, errors
