"""The gunicorn hooks' metrics folders: named after their master, and removed by the next server once that
master is gone (one killed outright never ran its ``on_exit``)."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

from backend.web import gunicorn_conf


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_starting_server_removes_only_the_folders_of_masters_no_longer_running(tmp_path, monkeypatch):
    monkeypatch.setattr(gunicorn_conf.tempfile, "tempdir", str(tmp_path))
    # on_starting sets both variables: recorded here (set, then unset) so that the test's end restores them
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    monkeypatch.setenv("MASKWEB_WEB_PROCESSES", "1")
    monkeypatch.setattr(gunicorn_conf, "_created", [])
    orphan = tmp_path / f"{gunicorn_conf.PREFIX}{_dead_pid()}-abc"
    live = tmp_path / f"{gunicorn_conf.PREFIX}{os.getppid()}-def"  # another server, still running
    unrelated = tmp_path / "something-else"
    for folder in (orphan, live, unrelated):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"x")

    gunicorn_conf.on_starting(SimpleNamespace(cfg=SimpleNamespace(workers=2)))
    try:
        own = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        assert os.path.basename(own).startswith(f"{gunicorn_conf.PREFIX}{os.getpid()}-")
        assert not orphan.exists() and live.exists() and unrelated.exists()
    finally:
        gunicorn_conf.on_exit(None)
    assert not os.path.exists(own)
