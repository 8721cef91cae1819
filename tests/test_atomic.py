"""Atomic writes: the target holds the old content or the whole new one; a failed write leaves no trace."""

from __future__ import annotations

import os
import stat

import pytest

from backend.atomic import atomic_write, atomic_write_bytes, atomic_write_text


def test_writes_creates_parents_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "result.json"
    atomic_write_text(target, "first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "overlay.png"
    target.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.png"]


def test_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "x.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o644
