"""The database: users, their API tokens, jobs and share links (SQLAlchemy 2, SQLite or PostgreSQL).

Times are stored as naive UTC and come back timezone-aware (UTC). The schema is created by Alembic
(``backend/storage/migrations``); ``tests/storage`` checks that the migrations and these models agree.

A ``Job`` moves through states ``queued -> running -> done | failed``, or ``-> cancelled``. While queued its
``stage`` is ``waiting``; ``dispatched_at`` is NULL while it waits in the database and set when the
dispatcher hands it to Celery. While running, ``stage`` is ``decode | model | masks | saving`` and
``progress`` goes from 0 to 1. Finished jobs have ``stage`` None.

Every UPDATE of a job row adds one to its ``revision`` (the column's ``onupdate``, applied to ORM flushes and
to ``update()`` statements alike), so a job's JSON says how new it is: events about one job come from several
processes (the web's dispatcher rounds, the worker's stage writes) and can reach a client out of order, and a
client keeps the highest revision it has seen and ignores anything older.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    literal_column,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from backend.segmentation.stages import PIPELINE_STAGES

# Job states
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED_STATES = (DONE, FAILED, CANCELLED)

# Job stages (None once finished): waiting for a worker, then the pipeline's own
WAITING = "waiting"
STAGES = (WAITING, *PIPELINE_STAGES)


def utcnow() -> datetime:
    return datetime.now(UTC)


def secret_digest(secret: str) -> str:
    """SHA-256 (hex) of a bearer secret (an API token, a share token): what the database keeps instead of it,
    so a copy of the database (a backup, a leaked dump) opens nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_id() -> str:
    """A 32-character lowercase hex id (128 random bits): job and user ids, safe as a directory name."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator):
    """Stores naive UTC; returns aware UTC datetimes. Accepts aware datetimes (any zone) or naive UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a ``Z`` suffix, or None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Base(DeclarativeBase):
    pass


class User(Base):
    """An anonymous visitor (identified by a signed cookie) or a script (by an API token)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    # Identity cookies issued before this time are refused (set when the user rotates the cookie).
    cookies_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiToken(Base):
    """A bearer token for scripts. Only the token's SHA-256 (hex) is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Job(Base):
    """One uploaded image and its segmentation. Files live in the file store under the job id (``backend.storage.files``)."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_user_created", "user_id", "created_at", "id"),
        Index("ix_jobs_state_dispatched", "state", "dispatched_at", "created_at"),
        # Every claim reads the stage durations of the latest finished jobs (repo.recent_stage_seconds).
        Index("ix_jobs_state_finished", "state", "finished_at"),
    )
    # A flush reads the new ``revision`` back at once (RETURNING), so a job changed through the ORM still
    # answers ``as_dict`` after its session is gone instead of raising DetachedInstanceError.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=QUEUED)
    stage: Mapped[str | None] = mapped_column(String(16), nullable=True, default=WAITING)
    progress: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    filename: Mapped[str] = mapped_column(String(255), nullable=False, default="")  # display only
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the uploaded file's size
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    instance_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    classes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # class names present, sorted
    timings: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)  # seconds per stage
    # The stage clock (while running): when the current stage began, and the seconds each stage is expected
    # to take (the median of recent finished jobs, written by the worker when it claims the job).
    stage_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    stage_estimates: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    celery_task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # set by the dispatcher
    # One more at every UPDATE of the row (see the module docstring): how new a job's JSON is.
    revision: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0", onupdate=literal_column("revision + 1")
    )

    share_links: Mapped[list[ShareLink]] = relationship(
        back_populates="job", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def api_urls(self, base: str | None = None) -> dict[str, str | None]:
        """File URLs under ``base`` (default ``/api/jobs/<id>``; share views pass ``/api/shared/<token>``).

        ``overlay`` and ``result`` are None until the job is done.
        """
        base = base or f"/api/jobs/{self.id}"
        done = self.state == DONE
        return {
            "image": f"{base}/image",
            "thumbnail": f"{base}/thumbnail",
            "overlay": f"{base}/overlay" if done else None,
            "result": f"{base}/result" if done else None,
        }

    def stage_elapsed_s(self) -> float | None:
        """Seconds since the running job's current stage began (None when not running or not known)."""
        if self.state != RUNNING or self.stage_started_at is None:
            return None
        return round(max(0.0, (utcnow() - self.stage_started_at).total_seconds()), 3)

    def as_dict(self, queue_position: int | None = None, *, urls_base: str | None = None) -> dict[str, Any]:
        """The JSON of ``GET /api/jobs/{id}`` and of every Socket.IO ``job`` event.

        ``stage_estimates`` (seconds per stage) and ``stage_elapsed_s`` let a page weigh the stages and advance
        within one by time: see frontend/src/progress.js."""
        return {
            "id": self.id,
            "state": self.state,
            "stage": self.stage,
            "progress": float(self.progress or 0.0),
            "queue_position": queue_position if self.state == QUEUED else None,
            "filename": self.filename,
            "width": self.width,
            "height": self.height,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "error": self.error,
            "error_code": self.error_code,
            "instance_count": self.instance_count,
            "classes": list(self.classes or []),
            "timings": dict(self.timings or {}),
            "stage_estimates": dict(self.stage_estimates) if self.stage_estimates else None,
            "stage_elapsed_s": self.stage_elapsed_s(),
            "cancel_requested": bool(self.cancel_requested),
            "revision": int(self.revision or 0),
            "urls": self.api_urls(urls_base),
        }


class ShareLink(Base):
    """Read-only access to one job for whoever holds its token (``secrets.token_urlsafe(32)``: 256 bits).
    Only the token's SHA-256 (hex) is stored; the token is shown once, to the owner who made the link."""

    __tablename__ = "share_links"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    job: Mapped[Job] = relationship(back_populates="share_links")
