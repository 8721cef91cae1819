"""gunicorn hooks of ``maskweb web`` (``--config python:backend.web.gunicorn_conf``): the web processes' shared
Prometheus counters.

Several web processes answer behind one port, so a scrape of ``/metrics`` reaches one of them at random; the
counters each process keeps (uploads, rejections, requests) must add up over all of them. prometheus_client's
multiprocess mode does that: every process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` and a
scrape reads them all (``backend.web.metrics``). ``on_starting`` (the master, before any worker imports
prometheus_client) records the number of processes for the app (``MASKWEB_WEB_PROCESSES``) and creates a fresh
folder for this server when none is set; ``child_exit`` tells the folder a worker is gone (its live gauges are
dropped, its counts stay); ``on_exit`` removes a folder it created.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_created: list[str] = []


def on_starting(server) -> None:
    # The app in each worker reads how many processes share the port (``sockets.allowed_transports``).
    os.environ["MASKWEB_WEB_PROCESSES"] = str(server.cfg.workers)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = tempfile.mkdtemp(prefix="maskweb-web-metrics-")
        _created.append(folder)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess  # only now: workers must import it after the folder is set

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    for folder in _created:
        shutil.rmtree(folder, ignore_errors=True)
