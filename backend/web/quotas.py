"""What one user may keep, and the disk all of them share: checked before an upload decodes or writes anything.

| ``limit`` in the error | status | setting (default) |
| --- | --- | --- |
| ``queued_jobs_per_user``: unfinished (queued or running) jobs | 429 | ``max_queued_per_user`` (200) |
| ``stored_bytes_per_user``: bytes of the images a user uploaded and still keeps | 403 | ``max_stored_mb_per_user`` (2048 MB) |
| ``free_disk``: the data directory's disk would fall below the margin (not with a bucket) | 507 | ``min_free_disk_mb`` (1024 MB) |

Stored bytes are the uploaded files' sizes (``Job.size_bytes``); the files kept per job (the original
re-encoded as PNG, a thumbnail, the result) are of that order. The disk guard counts the request's bytes as
what it will write. Each check is one indexed query per request (the user's own rows), never a scan of every
job. Two requests of one user racing each other may both pass: a quota can be overshot by one request.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.segmentation.images import format_bytes
from backend.storage.models import QUEUED, RUNNING, Job

QUEUED_JOBS = "queued_jobs_per_user"
STORED_BYTES = "stored_bytes_per_user"
FREE_DISK = "free_disk"
QUEUE_RETRY_S = 60  # a hint for clients: jobs finish in seconds to minutes


class QuotaExceeded(Exception):
    """``status``/``code``/``message`` as in the API's errors; ``extra`` names the limit and the figures."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra
        self.code = "insufficient_storage" if status == 507 else "quota_exceeded"


@dataclass(frozen=True)
class Quotas:
    max_queued_jobs: int
    max_stored_bytes: int
    min_free_disk_bytes: int

    @classmethod
    def from_settings(cls, settings) -> Quotas:
        return cls(
            settings.max_queued_per_user, settings.max_stored_bytes_per_user, settings.min_free_disk_bytes
        )


def usage(session: Session, user_id: str) -> tuple[int, int]:
    """``(unfinished jobs, stored upload bytes)`` of ``user_id``, in one read of the user's jobs (index
    ``ix_jobs_user_created``)."""
    unfinished = func.count().filter(Job.state.in_((QUEUED, RUNNING)))
    row = session.execute(
        select(unfinished, func.coalesce(func.sum(Job.size_bytes), 0)).where(Job.user_id == user_id)
    ).one()
    return int(row[0]), int(row[1])


def check_quotas(
    session: Session, free_bytes: int | None, user_id: str, quotas: Quotas, new_jobs: int, new_bytes: int
) -> None:
    """Raise QuotaExceeded when ``new_jobs`` images of ``new_bytes`` bytes would break a quota or the disk
    margin (``free_bytes`` on the file store's disk; None for a store without one, an S3 bucket); the first
    limit hit wins, in the order of the table above."""
    queued, kept = usage(session, user_id)
    if queued + new_jobs > quotas.max_queued_jobs:
        raise QuotaExceeded(
            429,
            f"You have {queued} unfinished jobs and sent {new_jobs} more, over the limit of "
            f"{quotas.max_queued_jobs} per user; upload more once some are done.",
            limit=QUEUED_JOBS,
            used=queued,
            allowed=quotas.max_queued_jobs,
            retry_after_s=QUEUE_RETRY_S,
        )
    if kept + new_bytes > quotas.max_stored_bytes:
        raise QuotaExceeded(
            403,
            f"Your images take {format_bytes(kept)} and these add {format_bytes(new_bytes)}, over the limit of "
            f"{format_bytes(quotas.max_stored_bytes)} per user; delete some images to make room.",
            limit=STORED_BYTES,
            used=kept,
            allowed=quotas.max_stored_bytes,
        )
    free = free_bytes
    if free is not None and free - new_bytes < quotas.min_free_disk_bytes:
        raise QuotaExceeded(
            507,
            f"The server's disk is almost full ({format_bytes(free)} free, uploads stop below "
            f"{format_bytes(quotas.min_free_disk_bytes)}); try again later.",
            limit=FREE_DISK,
            free_bytes=free,
            margin_bytes=quotas.min_free_disk_bytes,
            retry_after_s=QUEUE_RETRY_S,
        )
