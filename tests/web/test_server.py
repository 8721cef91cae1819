"""The web process under gevent: the standard library is patched before the app (and psycopg) is imported, or
the process refuses to start; Socket.IO then runs in gevent mode (each WebSocket a greenlet)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _start_app(tmp_path, prelude: str) -> subprocess.CompletedProcess:
    code = (
        prelude
        + "\nimport backend.web.wsgi as w\nfrom backend.web.sockets import socketio\nprint(socketio.async_mode)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASKWEB_") and k != "REDIS_URL"}
    env.update(MASKWEB_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_patched_first_the_web_runs_socketio_on_gevent(tmp_path):
    started = _start_app(tmp_path, "from gevent import monkey; monkey.patch_all()")
    assert started.returncode == 0, started.stderr[-2000:]
    assert started.stdout.strip().splitlines()[-1] == "gevent"


def test_a_psycopg_imported_before_the_patch_stops_the_web(tmp_path):
    started = _start_app(tmp_path, "import psycopg\nfrom gevent import monkey; monkey.patch_all()")
    assert started.returncode != 0
    assert "psycopg was imported before gevent patched the standard library" in started.stderr


def test_gunicorns_master_loads_nothing_of_the_app():
    """The master imports the access-log class and the hooks; the app (and psycopg) must wait for the patched
    worker, and prometheus_client for the metrics folder the hooks make."""
    code = (
        "import sys, backend.web.access_log, backend.web.gunicorn_conf\n"
        "print(sorted(m for m in ('flask', 'sqlalchemy', 'redis', 'psycopg', 'prometheus_client')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
