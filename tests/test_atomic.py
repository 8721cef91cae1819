"""Atomic writes: the target holds the old content or the whole new one; a failed write leaves no trace."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from backend.atomic import atomic_write, atomic_write_bytes, atomic_write_many, atomic_write_text


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


def test_the_rename_is_made_durable_by_fsyncing_the_directory(tmp_path, monkeypatch):
    """Order of operations: the temp file's data is fsynced, renamed into place, then the folder fsynced."""
    calls: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"))
        real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", Path(dst).name))
        real_replace(src, dst)

    (tmp_path / "job").mkdir()
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_bytes(tmp_path / "job" / "result.json", b"{}")
    assert calls == [("fsync", "file"), ("replace", "result.json"), ("fsync", "dir")]


def test_writing_never_touches_the_process_umask(tmp_path, monkeypatch):
    """Setting the umask, even for a moment, changes it for every thread of the process."""

    def no_umask(_mask):
        raise AssertionError("os.umask called")

    monkeypatch.setattr(os, "umask", no_umask)
    atomic_write_text(tmp_path / "a" / "x.txt", "x")
    assert (tmp_path / "a" / "x.txt").read_text() == "x"


def test_nothing_is_world_writable_even_under_a_zero_umask(tmp_path):
    old = os.umask(0)
    try:
        atomic_write_text(tmp_path / "jobs" / ("0" * 32) / "result.json", "{}")
        atomic_write_text(tmp_path / "jobs" / ("0" * 32) / "overlay.png", "x")
    finally:
        os.umask(old)
    for path in [*tmp_path.rglob("*")]:
        assert not stat.S_IMODE(path.stat().st_mode) & stat.S_IWOTH, path
    assert stat.S_IMODE((tmp_path / "jobs").stat().st_mode) == 0o755


def test_several_files_are_written_with_their_flushes_grouped(tmp_path, monkeypatch):
    """atomic_write_many: every file's data is fsynced before any rename, then each folder it touched (the new
    folders' parent, each file's folder) is fsynced once."""
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append(("fsync", kind if kind == "file" else os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    jobs = tmp_path / "jobs"
    files = [(jobs / name / "upload.bin", lambda f, n=name: f.write(n.encode())) for name in ("a", "b", "c")]
    atomic_write_many(files)
    assert [(jobs / n / "upload.bin").read_bytes() for n in "abc"] == [b"a", b"b", b"c"]
    assert calls[:3] == [("fsync", "file")] * 3
    assert calls[3:6] == [("replace", str(jobs / n / "upload.bin")) for n in "abc"]
    assert sorted(calls[6:]) == sorted(
        ("fsync", str(p)) for p in (tmp_path, jobs, jobs / "a", jobs / "b", jobs / "c")
    )


def test_a_failed_file_among_several_leaves_no_temp_file(tmp_path):
    def fail(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write_many([(tmp_path / "a" / "x", lambda f: f.write(b"x")), (tmp_path / "b" / "y", fail)])
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []
