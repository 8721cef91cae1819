"""Durable, atomic file writes: a reader sees the old file or the whole new one, never a half-written one, and
a write that returned survives a power cut.

Used by everything that writes results, records or reports (the data directory, ``maskweb segment``, the weights
record, ``maskweb bench --json``). A write goes to a temporary file in the target's directory (same
filesystem), which is fsynced, renamed over the target, and then the directory is fsynced so the rename itself
is on disk. On any failure the temporary file is removed and the error re-raised.

Permissions are fixed, never derived from the process umask (reading the umask means setting it, for every
thread at once): files ``FILE_MODE`` (0644), folders ``DIR_MODE`` (0755). A umask can only take bits away, so
no file or folder made here is ever world-writable, whatever the umask.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o644
DIR_MODE = 0o755


def fsync_dir(path: Path) -> None:
    """Flush the directory ``path`` itself (its entries: a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> Path:
    """Create ``path`` and its missing parents with ``DIR_MODE`` (``Path.mkdir(parents=True)`` gives parents
    0777 less the umask); each new folder's entry is fsynced into its parent. Returns ``path``."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        fsync_dir(folder.parent)
    return path


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Create or replace ``path`` with what ``write(binary_file)`` writes; creates parent folders.

    Raises what the write raises (``OSError`` ENOSPC for a full disk, EACCES for an unwritable folder); the
    target then keeps its old content, and no temporary file is left.
    """
    path = Path(path)
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Create or replace ``path`` with ``data``."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Create or replace ``path`` with ``text``."""
    atomic_write_bytes(path, text.encode(encoding))
