"""``tests/load/worker_rounds.py`` (README "Capacity") runs end to end at a tiny size: both ways play real
dispatcher rounds on its private Redis and database and report them. Its figures are the README's, not
asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_worker_rounds_benchmark_runs_both_ways():
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "load" / "worker_rounds.py"),
         "--workers", "2", "--job-s", "0.05", "--seconds", "1", "--queued", "200", "--round-samples", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout)
    assert report["queued_jobs"] == 200 and report["most_jobs_per_s"] == 40.0
    for way in ("in_job_thread", "maintenance_thread"):
        assert report[way]["jobs_per_s"] > 0
        assert report[way]["rounds"] >= 1, report  # asked-for rounds ran
    assert report["one_round"]["wall_ms_p50"] > 0 and report["one_round"]["cpu_ms_p50"] > 0
