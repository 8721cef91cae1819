"""What a failed write to the file store means for a person: a full disk, or storage that cannot be written.

``storage_failure(exc)`` is ``(code, sentence)`` for such an ``OSError`` (None for anything else). The web
answers an upload with it (507), a worker ends the job with it (``failed``, nothing marked done): neither
leaves half a file behind (``backend.atomic``).
"""

from __future__ import annotations

import errno

FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def storage_failure(exc: BaseException) -> tuple[str, str] | None:
    if not isinstance(exc, OSError):
        return None
    if exc.errno in FULL:
        return (
            "storage_full",
            "The server's storage is full, so nothing was saved. The operator has to free space; try again later.",
        )
    if exc.errno in UNWRITABLE:
        return (
            "storage_unwritable",
            "The server cannot write to its storage (read-only or not permitted), so nothing was saved. "
            "The operator has to fix the data directory; try again later.",
        )
    return None
