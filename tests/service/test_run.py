"""``maskweb run`` as a user starts it: private Redis, worker and gunicorn; Ctrl-C stops every process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from backend.cli.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_maskweb_run_serves_and_stops_everything_on_ctrl_c(tmp_path, small_weights, small_model_config):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASKWEB_") and k != "REDIS_URL"}
    env.update(
        MASKWEB_DATA_DIR=str(tmp_path / "data"),
        MASKWEB_PORT=str(port),
        MASKWEB_WEIGHTS=str(small_weights),
        MASKWEB_MODEL_CONFIG=str(small_model_config),
        CUDA_VISIBLE_DEVICES="",
    )
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "run"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = requests.get(base + "/readyz", timeout=5)
                if ready.status_code == 200:
                    break
            except (
                requests.ConnectionError,
                requests.Timeout,
            ):  # not listening yet, or still loading the app
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, (tmp_path / "run.log").read_text()[-3000:]
        body = ready.json()
        assert body["ready"] is True and body["checks"]["workers"]["count"] == 1
        assert requests.get(base + "/healthz", timeout=5).json()["ok"] is True
        assert f"http://127.0.0.1:{port}/" in (tmp_path / "run.log").read_text()
        assert (tmp_path / "data" / "redis").is_dir()  # its own Redis, data under the data dir

        family = _descendants(proc.pid)
        assert len(family) >= 4  # redis-server, worker (+ pool process), gunicorn (+ its worker)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in family):
            time.sleep(0.2)
        assert [p for p in family if _alive(p)] == []
        with pytest.raises(requests.ConnectionError):
            requests.get(base + "/healthz", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
