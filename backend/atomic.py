"""Atomic file writes: a reader sees the old file or the whole new one, never a half-written one.

Used by everything that writes results, records or reports (the data directory, ``maskweb segment``, the weights
record, ``maskweb bench --json``). Writes go to a temp file in the target's directory (same filesystem), are
flushed to disk, then renamed over the target; on any failure the temp file is removed and the error re-raised.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Create or replace ``path`` with what ``write(binary_file)`` writes; creates parent directories.

    The file gets ordinary permissions (0666 less the umask), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Create or replace ``path`` with ``data``."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Create or replace ``path`` with ``text``."""
    atomic_write_bytes(path, text.encode(encoding))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
