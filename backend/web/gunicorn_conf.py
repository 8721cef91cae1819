"""gunicorn hooks of ``maskweb web`` (``--config python:backend.web.gunicorn_conf``): the web processes' shared
Prometheus counters, and their startup objects kept out of garbage collection (``post_worker_init``).

Several web processes answer behind one port, so a scrape of ``/metrics`` reaches one of them at random; the
counters each process keeps (uploads, rejections, requests) must add up over all of them. prometheus_client's
multiprocess mode does that: every process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` and a
scrape reads them all (``backend.web.metrics``). ``on_starting`` (the master, before any worker imports
prometheus_client) records the number of processes for the app (``MASKWEB_WEB_PROCESSES``) and creates a fresh
folder for this server when none is set; ``child_exit`` tells the folder a worker is gone (its live gauges are
dropped, its counts stay); ``on_exit`` removes a folder it created. A master killed outright (SIGKILL, a
power cut) cannot clean up: its folder's name carries its pid, and the next server to start removes the
folders of masters no longer running.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "maskweb-web-metrics-"
_OWNED = re.compile(re.escape(PREFIX) + r"(\d+)-")
_created: list[str] = []


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_orphaned_folders(parent: str | None = None) -> list[Path]:
    """Remove the metrics folders (in ``parent``, default the temp dir) of servers whose master is no longer
    running; returns them. A folder whose pid was reused by another process is kept (it only costs a few KB)."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(PREFIX + "*"):
        match = _OWNED.match(folder.name)
        if match and folder.is_dir() and not _running(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def on_starting(server) -> None:
    # The app in each worker reads how many processes share the port (``sockets.allowed_transports``).
    os.environ["MASKWEB_WEB_PROCESSES"] = str(server.cfg.workers)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        remove_orphaned_folders()
        folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
        _created.append(folder)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


def post_worker_init(worker) -> None:
    """A web process has imported and built the app: leave what exists now out of every later garbage
    collection (``gc.freeze``). Those ~150,000 objects (modules, the app, SQLAlchemy's, Socket.IO's and Celery's
    state) live as long as the process, but a full collection walked them all: about 55 ms with the event loop
    stopped, which every request and socket in flight waited out. Only what the process makes afterwards is
    collected from then on."""
    gc.collect()
    gc.freeze()


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess  # only now: workers must import it after the folder is set

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    for folder in _created:
        shutil.rmtree(folder, ignore_errors=True)
