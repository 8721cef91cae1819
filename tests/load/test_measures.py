"""The load report's arithmetic: percentiles, fairness (jobs of others that started first), RSS of a tree."""

from __future__ import annotations

import os
import subprocess
import sys

from load.measures import cpu_seconds, fairness, percentile, rss_bytes


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50, 95, 100)
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None


def _job(user, created, started):
    return {"user": user, "created_at": f"2026-01-01T00:00:{created:02d}Z", "started_at": started}


def test_fairness_counts_other_users_jobs_started_while_waiting():
    at = "2026-01-01T00:00:{:02d}Z".format
    jobs = [
        _job("a", 0, at(1)), _job("a", 0, at(2)), _job("a", 0, at(5)), _job("a", 0, at(6)),
        _job("b", 3, at(4)),  # b uploaded at 3: a's job at 5 had not started, so nothing overtook b
        _job("c", 3, at(7)),  # c uploaded at 3, first ran at 7: b's (4) and a's (5, 6) started in between
    ]  # fmt: skip
    assert fairness(jobs) == {"a": 0, "b": 0, "c": 3}


def test_fairness_leaves_out_users_with_nothing_started():
    assert fairness([_job("a", 0, None), _job("b", 0, "2026-01-01T00:00:01Z")]) == {"b": 0}


def test_rss_covers_the_process_tree():
    assert rss_bytes(os.getpid()) > 10 * 1024 * 1024
    assert rss_bytes(2**22 + 12345) == 0  # no such process


SPIN_THEN_WAIT = """
import sys, time
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
print("spun", flush=True)
sys.stdin.read()
"""


def test_cpu_counts_a_living_child_process_work():
    before = cpu_seconds(os.getpid())
    child = subprocess.Popen(
        [sys.executable, "-c", SPIN_THEN_WAIT], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout.readline() == b"spun\n"  # 0.5 s of CPU used, and the child still alive
        assert cpu_seconds(child.pid) >= 0.45
        assert cpu_seconds(os.getpid()) - before >= 0.45  # ours includes it
    finally:
        child.communicate(b"")
    assert cpu_seconds(2**22 + 12345) == 0.0  # no such process


def test_users_arrive_at_random_within_the_window_or_all_at_once():
    from load.scenarios import arrival_offsets

    spread = arrival_offsets(200, 2.0, seed=1)
    assert spread == sorted(spread) and 0.0 <= spread[0] and spread[-1] <= 2.0
    assert spread[0] < 0.2 and spread[-1] > 1.8  # drawn over the whole window, not bunched
    assert max(b - a for a, b in zip(spread, spread[1:], strict=False)) < 0.5
    assert spread == arrival_offsets(200, 2.0, seed=1) != arrival_offsets(200, 2.0, seed=2)
    assert arrival_offsets(5, 0.0) == [0.0] * 5


def test_each_player_starts_at_its_arrival():
    import time

    from load.scenarios import _together, arrival_offsets

    started: dict[int, float] = {}
    begin = time.monotonic()
    errors = _together(
        list(range(6)), lambda p: started.__setitem__(p, time.monotonic()), arrival_s=0.6, seed=3
    )
    assert errors == []
    go = begin + 0.2  # _together parks the players for 0.2 s before releasing them
    for player, offset in enumerate(arrival_offsets(6, 0.6, seed=3)):
        assert offset <= started[player] - go + 0.01 < offset + 0.3
