"""What a load run measures, as pure functions over what the players recorded (unit-tested in test_measures.py).

- ``percentile(values, q)``: nearest-rank percentile (q in 0..100) of a non-empty list; None for an empty one.
- ``fairness(jobs)``: for each user, how many jobs of *other* users started between the user's upload and its
  own first job starting; the report gives the worst user. ``jobs`` are the API's job JSON (``created_at``,
  ``started_at`` ISO-8601) each with ``user``.
- ``rss_bytes(pid)``: resident memory of a process and all its descendants (from /proc; Linux only).
- ``cpu_seconds(pid)``: CPU time (user + system) a process and its living descendants have used so far.
- ``write_report(report, out)``: the run's report as JSON on stdout, and in the file ``out`` when given.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from pathlib import Path


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def fairness(jobs: list[dict]) -> dict[str, int]:
    """``{user: jobs of others started after the user's first upload and before its first job started}``.

    Users none of whose jobs started are left out (the caller checks that every job is done)."""
    per_user: dict[str, list[dict]] = defaultdict(list)
    for job in jobs:
        per_user[job["user"]].append(job)
    starts = [(_time(j["started_at"]), j["user"]) for j in jobs if j.get("started_at")]
    overtaken: dict[str, int] = {}
    for user, mine in per_user.items():
        started = [_time(j["started_at"]) for j in mine if j.get("started_at")]
        if not started:
            continue
        uploaded = min(_time(j["created_at"]) for j in mine)
        first = min(started)
        overtaken[user] = sum(1 for at, other in starts if other != user and uploaded < at < first)
    return overtaken


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (those alive now)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += _children(current)
    return found


def rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` and its descendants, in bytes (0 for a process that is gone)."""
    total = 0
    for current in _tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its living descendants (their own threads, not
    children they have already reaped), from /proc/<pid>/stat in clock ticks (usually 10 ms: compare
    differences over many requests, not one). 0.0 for a process that is gone."""
    import os

    ticks = 0
    for current in _tree(pid):
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def write_report(report: dict, out: Path | None = None) -> None:
    """Print ``report`` as indented JSON, and write it to the path ``out`` too when given."""
    import json

    text = json.dumps(report, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
