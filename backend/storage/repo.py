"""Queries and state changes on jobs and share links, shared by the web and the queue.

Every state change is a conditional UPDATE (``... WHERE state = 'queued'``) so that the web cancelling a job
and a worker starting it cannot both win: the caller learns from the return value which one did.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, and_, cast, func, or_, select, update
from sqlalchemy.orm import Session

from .models import CANCELLED, DONE, QUEUED, RUNNING, Job, ShareLink, secret_digest, utcnow

GALLERY_DEFAULT_LIMIT = 24
GALLERY_MAX_LIMIT = 100


# --- ownership ------------------------------------------------------------------------------------------------


def owned_job(session: Session, job_id: str, user_id: str | None) -> Job | None:
    """The job ``job_id`` if ``user_id`` owns it, else None (also for someone else's job: no leak)."""
    if not user_id:
        return None
    job = session.get(Job, job_id)
    return job if job is not None and job.user_id == user_id else None


def owned_jobs(session: Session, job_ids: list[str], user_id: str | None) -> list[Job]:
    """The jobs among ``job_ids`` that ``user_id`` owns, in one query (order not kept; others are absent)."""
    if not user_id or not job_ids:
        return []
    return list(session.scalars(select(Job).where(Job.id.in_(job_ids), Job.user_id == user_id)))


# --- cancelling ---------------------------------------------------------------------------------------------------


def cancel_job(session: Session, job_id: str) -> str:
    """Cancel the job: a queued job becomes ``cancelled`` at once; a running one gets ``cancel_requested``
    (the worker stops at the next stage boundary). Returns ``"cancelled"``, ``"requested"`` or
    ``"finished"`` (nothing to cancel). Flushes; the caller commits."""
    now = utcnow()
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == QUEUED)
        .values(
            state=CANCELLED,
            stage=None,
            cancel_requested=True,
            finished_at=now,
            error_code="cancelled",
            error="Cancelled by its owner.",
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount:
        _refresh(session, job_id)
        return "cancelled"
    requested = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == RUNNING)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    _refresh(session, job_id)
    return "requested" if requested.rowcount else "finished"


def _refresh(session: Session, job_id: str) -> None:
    job = session.get(Job, job_id)
    if job is not None:
        session.refresh(job)


# --- the gallery -----------------------------------------------------------------------------------------------


class BadCursor(ValueError):
    pass


def encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        return datetime.fromisoformat(created), str(job_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor(f"not a cursor from this API: {cursor[:40]!r}") from exc


def class_filter(prefix: str):
    """Jobs with a class whose name starts with ``prefix``, in any case (portable: SQLite and PostgreSQL).

    Matches the JSON-encoded prefix with its opening quote (so "car" finds "car" and "carrot" but not
    "scar") inside the stored list's lowercased text; LIKE wildcards escaped.
    """
    needle = json.dumps(prefix.lower())[:-1]  # '"car' : the opening quote, no closing one
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(cast(Job.classes, String)).like(f"%{escaped}%", escape="\\")


def class_counts(session: Session, user_id: str) -> list[tuple[str, int]]:
    """The classes in the user's finished results with how many results hold each, most frequent first
    (ties by name). Reads one JSON list per finished job."""
    counts: Counter[str] = Counter()
    for classes in session.scalars(select(Job.classes).where(Job.user_id == user_id, Job.state == DONE)):
        counts.update(set(classes or []))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


@dataclass
class GalleryPage:
    jobs: list[Job]
    next_cursor: str | None


def gallery_page(
    session: Session,
    user_id: str,
    *,
    cursor: str | None = None,
    limit: int = GALLERY_DEFAULT_LIMIT,
    class_name: str | None = None,
) -> GalleryPage:
    """The user's jobs, newest first, ``limit`` at a time, after ``cursor`` (from the previous page).

    Raises BadCursor for a cursor this function did not make. The cursor is (created_at, id), so pages stay
    stable while new jobs arrive.
    """
    query = select(Job).where(Job.user_id == user_id)
    if class_name:
        query = query.where(class_filter(class_name))
    if cursor:
        created, job_id = decode_cursor(cursor)
        query = query.where(or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id)))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    jobs = list(session.scalars(query))
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return GalleryPage(jobs, encode_cursor(jobs[-1]) if more and jobs else None)


# --- stage estimates -------------------------------------------------------------------------------------------

RECENT_JOBS_FOR_ESTIMATES = 20


def recent_stage_seconds(
    session: Session, stages: tuple[str, ...], limit: int = RECENT_JOBS_FOR_ESTIMATES
) -> dict[str, float]:
    """Seconds each of ``stages`` took: the median over the last ``limit`` finished (done) jobs that measured it
    (``Job.timings``). A stage no such job measured is left out; {} when no job is done yet."""
    recent = session.scalars(
        select(Job.timings)
        .where(Job.state == DONE, Job.timings.is_not(None))
        .order_by(Job.finished_at.desc())
        .limit(limit)
    )
    samples: dict[str, list[float]] = {stage: [] for stage in stages}
    for timings in recent:
        for stage in stages:
            value = (timings or {}).get(stage)
            if isinstance(value, int | float) and value >= 0:
                samples[stage].append(float(value))
    return {stage: round(statistics.median(values), 4) for stage, values in samples.items() if values}


# --- share links -----------------------------------------------------------------------------------------------


def create_share_link(session: Session, job: Job, token: str | None = None) -> str:
    """A new link for ``job`` with ``token`` (default: 256 random bits); returns the token (only its digest is
    stored). Flushes; a token already stored raises IntegrityError."""
    token = token or secrets.token_urlsafe(32)
    session.add(ShareLink(token_sha256=secret_digest(token), job_id=job.id))
    session.flush()
    return token


def share_link_count(session: Session, job_id: str) -> int:
    """How many links the job ever had, revoked ones included."""
    return session.scalar(select(func.count()).select_from(ShareLink).where(ShareLink.job_id == job_id)) or 0


def live_share_links(session: Session, job_id: str) -> list[str]:
    """Digests (``ShareLink.token_sha256``) of the job's links that are not revoked."""
    return list(
        session.scalars(
            select(ShareLink.token_sha256).where(ShareLink.job_id == job_id, ShareLink.revoked_at.is_(None))
        )
    )


def revoke_share_links(session: Session, job_id: str) -> int:
    """Revoke every live link of the job; returns how many."""
    result = session.execute(
        update(ShareLink)
        .where(ShareLink.job_id == job_id, ShareLink.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def share_link(session: Session, token: str) -> ShareLink | None:
    """The link of ``token`` (live or revoked), or None."""
    if not token or len(token) > 64:
        return None
    return session.get(ShareLink, secret_digest(token))


def shared_job(session: Session, token: str) -> Job | None:
    """The job behind a live share token, or None (unknown or revoked)."""
    link = share_link(session, token)
    if link is None or link.revoked_at is not None:
        return None
    return session.get(Job, link.job_id)


# --- orphaned files -----------------------------------------------------------------------------------------------


ORPHAN_MIN_AGE_S = 3600


@dataclass
class OrphanScan:
    """What ``find_orphan_files`` saw: job ids with files, how many of them have rows, the orphans (old
    enough to remove), and ``refusal``: why nothing may be removed (a sentence), or None."""

    stored: int
    known: int
    orphans: list[str]
    refusal: str | None


def find_orphan_files(session: Session, store, min_age_s: float = ORPHAN_MIN_AGE_S) -> OrphanScan:
    """Jobs whose files exist in ``store`` (a ``FileStore``) but that have no row, last written over
    ``min_age_s`` seconds ago. Such files are left only by a process killed between writing an upload's files
    and committing its rows (any handled failure cleans up at once); the age keeps an upload in flight safe.

    Refuses (``refusal`` set, ``orphans`` still listed) when the database has no job at all while files
    exist: that is a new or wrong database (a mistyped ``DATABASE_URL``), and every file would look orphaned.
    Removes nothing.
    """
    ages = store.job_ages()
    stored = sorted(ages)
    known: set[str] = set()
    for start in range(0, len(stored), 500):
        chunk = stored[start : start + 500]
        known |= set(session.scalars(select(Job.id).where(Job.id.in_(chunk))))
    cutoff = time.time() - min_age_s
    orphans = [job_id for job_id in stored if job_id not in known and ages[job_id] < cutoff]
    refusal = None
    if stored and session.scalar(select(func.count()).select_from(Job)) == 0:
        refusal = (
            f"the database has no jobs at all, but {store.describe()} holds the files of {len(stored)} jobs: "
            "it looks new or is not the database these files belong to (check DATABASE_URL). Nothing removed."
        )
    return OrphanScan(len(stored), len(known), orphans, refusal)


def remove_orphan_files(session: Session, store, min_age_s: float = ORPHAN_MIN_AGE_S) -> list[str]:
    """Delete what ``find_orphan_files`` finds, unless it refuses (then nothing). Returns the ids removed."""
    scan = find_orphan_files(session, store, min_age_s)
    if scan.refusal:
        return []
    for job_id in scan.orphans:
        store.remove_job(job_id)
    return scan.orphans
