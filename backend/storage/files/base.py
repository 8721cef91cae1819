"""What every file store offers: a job's files, written whole, read back, removed together.

A job's files, by kind (``JobFile``)::

    upload.bin       the uploaded file's bytes as received (validated); replaced by the next two
    original.png     the upload, normalised to 8-bit RGB, EXIF orientation applied
    thumbnail.jpg    at most THUMBNAIL_SIZE px on the long side
    result.json      the segmentation (docs/ARCHITECTURE.md, "Result contract")
    overlay.png      the rendered overlay

Job ids are 32 lowercase hex characters; anything else raises ValueError, so user input can never become a
path or an object key. A write is all or nothing: a reader sees the old file or the whole new one, never
half of one. Subclasses store bytes (``_write``, ``open``, ``remove_job``, ``job_ages``); encoding images
and JSON lives here, once.

Failure modes: a missing file reads as None; a storage that cannot be reached (disk full, bucket gone,
credentials refused) raises its own error (OSError, botocore's ClientError/BotoCoreError) from the call.
"""

from __future__ import annotations

import json
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, BinaryIO

from PIL import Image

from .failures import storage_failure

THUMBNAIL_SIZE = 320
# zlib level 1: a 12 MP photo encodes about twice as fast as at the default level for ~15% more bytes;
# whoever prepares the original (backend.storage.originals) waits on this, the storage hardly notices.
PNG_COMPRESS_LEVEL = 1
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class JobFile(Enum):
    """One of a job's files: its name inside the job's folder and its media type."""

    UPLOAD = ("upload.bin", "application/octet-stream")
    ORIGINAL = ("original.png", "image/png")
    THUMBNAIL = ("thumbnail.jpg", "image/jpeg")
    RESULT = ("result.json", "application/json")
    OVERLAY = ("overlay.png", "image/png")

    @property
    def filename(self) -> str:
        return self.value[0]

    @property
    def media_type(self) -> str:
        return self.value[1]


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is 32 lowercase hex characters, else raise ValueError."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


def is_job_id(name: str) -> bool:
    return bool(_JOB_ID.match(name))


def make_thumbnail(img: Image.Image, size: int = THUMBNAIL_SIZE) -> Image.Image:
    """A copy of ``img`` in RGB, scaled down (never up) so its long side is at most ``size`` px."""
    thumb = img.convert("RGB") if img.mode != "RGB" else img.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    return thumb


@dataclass
class StoredFile:
    """A file opened for sending: ``stream`` (binary, the caller closes it), ``size`` in bytes, ``modified``
    (seconds since the epoch) and ``etag`` (changes whenever the content may have)."""

    stream: BinaryIO
    size: int
    modified: float
    etag: str


class FileStore(ABC):
    """Where a job's files live. Implementations: ``LocalFileStore`` (a directory), ``S3FileStore`` (a
    bucket). Thread-safe: one instance serves every thread of a process."""

    # --- what an implementation provides -------------------------------------------------------------------

    @abstractmethod
    def _write(self, job_id: str, kind: JobFile, write: Callable[[BinaryIO], object]) -> None:
        """Create or replace the file with what ``write(binary_file)`` writes, all or nothing."""

    @abstractmethod
    def open(self, job_id: str, kind: JobFile) -> StoredFile | None:
        """The file opened for reading, or None when it does not exist."""

    @abstractmethod
    def remove(self, job_id: str, kind: JobFile) -> None:
        """Delete one file; a missing one is fine."""

    @abstractmethod
    def remove_job(self, job_id: str) -> None:
        """Delete every file of the job; a job with no files is fine."""

    @abstractmethod
    def job_ages(self) -> dict[str, float]:
        """``{job id: newest modification of its files, seconds since the epoch}`` for every job with files
        (for finding files whose job row was never committed)."""

    @abstractmethod
    def check(self) -> None:
        """Raise (OSError, botocore's errors) unless files can be written here now: the directory is writable,
        or the bucket exists and the credentials reach it."""

    @abstractmethod
    def free_bytes(self) -> int | None:
        """Bytes free where new files go, or None when the store has no disk to fill (a bucket)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the files are, for messages: a directory or ``s3://bucket/prefix``."""

    # --- writing ---------------------------------------------------------------------------------------------

    def _save_image(self, job_id: str, kind: JobFile, img: Image.Image, format: str, **params: Any) -> None:
        self._write(check_job_id(job_id), kind, lambda f: img.save(f, format=format, **params))

    def save_upload(self, job_id: str, data: bytes) -> None:
        """Write the uploaded file's bytes as received (``backend.storage.originals`` turns them into the
        original and thumbnail later, off the upload's path)."""
        self._write(check_job_id(job_id), JobFile.UPLOAD, lambda f: f.write(data))

    def save_uploads(self, uploads: list[tuple[str, BinaryIO]]) -> None:
        """``save_upload`` for several jobs, ``(job_id, stream)`` each, read from the stream's current position
        to its end; a store may group the writes (the local one groups the flushes to disk). On an error some
        may be written: the caller removes those jobs' files."""
        for job_id, stream in uploads:
            self._write(check_job_id(job_id), JobFile.UPLOAD, lambda f, s=stream: shutil.copyfileobj(s, f))

    def save_original(self, job_id: str, img: Image.Image) -> None:
        """Write the normalised RGB original as PNG and its thumbnail as JPEG, the thumbnail first: a job whose
        original exists has its thumbnail too."""
        self.save_thumbnail(job_id, img)
        self._save_image(job_id, JobFile.ORIGINAL, img, "PNG", compress_level=PNG_COMPRESS_LEVEL)

    def save_thumbnail(self, job_id: str, img: Image.Image) -> None:
        self._save_image(job_id, JobFile.THUMBNAIL, make_thumbnail(img), "JPEG", quality=85)

    def save_overlay(self, job_id: str, img: Image.Image) -> None:
        self._save_image(job_id, JobFile.OVERLAY, img, "PNG", compress_level=PNG_COMPRESS_LEVEL)

    def save_result(self, job_id: str, result: dict[str, Any]) -> None:
        """Write the result JSON (a dict in the result contract's shape)."""
        data = json.dumps(result, separators=(",", ":")).encode()
        self._write(check_job_id(job_id), JobFile.RESULT, lambda f: f.write(data))

    # --- reading -----------------------------------------------------------------------------------------------

    def read(self, job_id: str, kind: JobFile) -> bytes | None:
        """The whole file, or None when it does not exist."""
        stored = self.open(job_id, kind)
        if stored is None:
            return None
        with stored.stream:
            return stored.stream.read()

    def exists(self, job_id: str, kind: JobFile) -> bool:
        stored = self.open(job_id, kind)
        if stored is None:
            return False
        stored.stream.close()
        return True

    def load_result(self, job_id: str) -> dict[str, Any] | None:
        """The result JSON as a dict, or None when it has not been written."""
        data = self.read(job_id, JobFile.RESULT)
        return None if data is None else json.loads(data)

    def remove_outputs(self, job_id: str) -> None:
        """Delete what a worker writes (result and overlay), keeping the upload: for a job that did not
        finish, so a retry or a reader never sees a stale result. Storage that cannot be written (read-only)
        cannot have received those files either, so that failure is not an error here."""
        for kind in (JobFile.RESULT, JobFile.OVERLAY):
            try:
                self.remove(job_id, kind)
            except OSError as exc:
                if storage_failure(exc) is None:
                    raise
