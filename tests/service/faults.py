"""Real faults for the service tests: Redis killed and restarted (with or without its data), a database that
stops answering (a TCP proxy in front of PostgreSQL that the test cuts), a data directory on a tiny tmpfs.

Every fault is reversible and bounded; each helper restores what it broke when its block ends.
"""

from __future__ import annotations

import contextlib
import selectors
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

from backend.cli.processes import stop_process


def restart_redis(stack, keep_data: bool) -> None:
    """kill -9 the stack's Redis (as a crash would), then start it again on the same port: with its data
    directory as it was (append-only file kept), or emptied (Redis without persistence)."""
    server = stack.redis_server
    stop_process(server.proc, signal.SIGKILL, grace_s=5)
    server.proc = None
    if not keep_data:
        shutil.rmtree(server.data_dir)
    server.start()


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; ``cut()`` drops every connection and refuses new ones
    (the database host is gone), ``restore()`` listens again on the same port."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._running = True
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed: cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close() alone would not
        self.listener.close()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self._running = True
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def close(self) -> None:
        self.cut()


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str = "64k", read_only: bool = False):
    """Mount a tmpfs of ``size`` over ``path`` (created if missing) for the block: filled to the last byte
    (every write then fails with ENOSPC), or mounted read-only (EROFS). Needs root, as CI runs."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    try:
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        else:
            with open(path / ".filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * 4096)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def can_mount() -> bool:
    probe = Path("/proc/self/status").read_text()
    cap = next((line.split()[1] for line in probe.splitlines() if line.startswith("CapEff:")), "0")
    return bool(int(cap, 16) & (1 << 21))  # CAP_SYS_ADMIN
