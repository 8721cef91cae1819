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


FROZEN = """
import gc
from backend.web import gunicorn_conf
from backend.web import create_app  # what a web process has imported before gunicorn calls the hook

gc.collect()
before = len(gc.get_objects())
gunicorn_conf.post_worker_init(None)
after = len(gc.get_objects())
print(before, after, gc.get_freeze_count())
"""


def test_a_started_web_process_leaves_its_startup_objects_out_of_later_collections():
    # In a fresh interpreter: freezing is for the rest of the process's life.
    out = subprocess.run(
        [sys.executable, "-c", FROZEN], capture_output=True, text=True, timeout=120, check=True
    )
    before, after, frozen = map(int, out.stdout.split())
    assert before > 10_000  # the app's modules alone
    assert frozen >= before  # every object there was is frozen ...
    assert after < before / 100  # ... so a full collection no longer walks them
