"""A worker lowers its CPU priority before loading the model, so the web process on the same machine answers
first (``backend.jobs.tasks.lower_priority``, ``MASKWEB_WORKER_NICE``)."""

from __future__ import annotations

import subprocess
import sys

from backend.settings import Settings

PROBE = """
import os, sys, threading
from backend.jobs.tasks import lower_priority
before = os.nice(0)
after = lower_priority(int(sys.argv[1]))
seen = []
t = threading.Thread(target=lambda: seen.append(os.nice(0)))  # a thread made later, like the model's pools
t.start(); t.join()
print(before, after, seen[0])
"""


def _probe(increment: int) -> tuple[int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(increment)], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    return tuple(int(v) for v in out)


def test_a_worker_lowers_its_priority_and_its_later_threads_inherit_it():
    before, after, thread = _probe(7)
    assert after == min(before + 7, 19) and thread == after


def test_nice_zero_leaves_the_priority_alone():
    before, after, thread = _probe(0)
    assert after == before == thread


def test_the_setting_reads_from_the_environment(tmp_path):
    assert Settings.from_env({"MASKWEB_DATA_DIR": str(tmp_path)}).worker_nice == 10
    assert Settings.from_env({"MASKWEB_DATA_DIR": str(tmp_path), "MASKWEB_WORKER_NICE": "0"}).worker_nice == 0
