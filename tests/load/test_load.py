"""The bounded ``make load`` that CI runs: a few users following their jobs to done, simultaneous uploaders, a
burst of each kind of request, 200 sockets on one shared job, all against a real stack (gevent web, Celery
worker on the small config). It asserts what does not depend on the machine's speed: no errors, every job
done, the queue's fairness promise, every subscriber reached; the timings go to test-artifacts/load.json
(figures live in README, from make load).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "test-artifacts" / "load.json"
BOUND_S = 300


@pytest.mark.slow
def test_bounded_load_run(small_weights, parity_dir):
    ARTIFACT.parent.mkdir(exist_ok=True)
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "load" / "run.py"), "--bounded", "--out", str(ARTIFACT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BOUND_S,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(ARTIFACT.read_text())["scenarios"]

    users = report["users"]
    assert users["errors"] == []
    assert users["jobs_done"] == users["jobs"] == users["users"] * users["images_per_user"]
    assert set(users["completion_s"]) == {f"user{i}" for i in range(users["users"])}
    assert users["fairness"]["worst_overtaken"] <= users["fairness"]["promised_at_most"]
    assert users["event_latency_ms"]["events"] >= users["jobs"]  # at least every job's done event
    assert all(v > 0 for v in (*users["rss_before"].values(), *users["rss_after"].values()))

    uploaders = report["uploaders"]
    assert uploaders["errors"] == [] and uploaders["accepted"] == uploaders["uploaders"]

    bursts = report["bursts"]
    assert set(bursts["kinds"]) == {"session", "upload_1", f"upload_{users['images_per_user']}"}
    for kind in bursts["kinds"].values():  # every request of every burst answered
        assert kind["errors"] == [] and kind["answered"] == bursts["requests_per_burst"] * bursts["rounds"]

    sockets = report["sockets"]
    assert sockets["connect_errors"] == [] and sockets["connected"] == sockets["sockets"]
    assert sockets["http_ms_held"]["requests"] > 0  # every request answered 200 with the sockets held
    assert sockets["done_event_received"] == sockets["sockets"]  # the event reached every subscriber
