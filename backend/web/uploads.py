"""Turning one upload request into jobs, all or nothing.

1. Every file is checked from its header first (size, format by content, pixel count), so a bad file late
   in the request is refused before any image is decoded; then the user's quotas and the disk margin
   (``quotas.check_quotas``).
2. Each file is then decoded in full (``backend.segmentation.images.load_image``: a truncated or corrupt file is
   refused here, with the rest of the request), one at a time (memory holds one decoded image), through the
   web process's ``decoding.DecodeGate``: its memory cost, estimated from the header (``decode_cost``), must
   fit the decoding budget, and it waits for a free decoder (off the event loop under gevent).
3. The files' bytes are written as received under fresh job ids (``JobFile.UPLOAD``), in one grouped write
   (``FileStore.save_uploads``: the local store flushes them to disk together), and the job rows are
   committed together.

Encoding the normalised original and thumbnail is not part of the request (a 12 MP photo takes about a second
to encode as PNG, ten times its decode): ``backend.storage.originals`` does it afterwards, in the background or
for whoever reads those files first.

If anything fails (a file that turns out truncated, a full disk, the storage, the database), every file written
so far is removed and nothing is committed: a rejected or failed upload leaves nothing behind. A rejection is an
``UploadRejected`` naming the file (its position and its name), what was wrong and the limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO

from sqlalchemy import insert
from sqlalchemy.orm import Session

from backend.segmentation.images import (
    ImageLimits,
    ImageRejected,
    check_byte_size,
    decode_cost,
    load_image,
    open_checked,
)
from backend.storage.files import FileStore
from backend.storage.models import QUEUED, WAITING, Job, new_id, utcnow

from .decoding import DecodeGate, DecodeRefused, offload
from .quotas import QuotaExceeded, Quotas, check_quotas

MAX_FILES_PER_REQUEST = 100
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class UploadedFile:
    """One part of the multipart request: ``name`` as the client sent it (display only), ``stream``."""

    name: str
    stream: BinaryIO


class UploadRejected(Exception):
    """The request as a whole is refused. ``status``/``code``/``message`` as in the API's errors;
    ``filename`` and ``index`` (0-based) name the offending file when there is one; ``extra`` holds more
    fields for the error JSON (a quota's ``limit``, ``used``, ``allowed``)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        filename: str | None = None,
        index: int | None = None,
        **extra,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.filename, self.index, self.extra = filename, index, extra

    def error_fields(self) -> dict:
        """The fields the API adds to its error object."""
        named = {"filename": self.filename, "index": self.index} if self.filename is not None else {}
        return {**named, **self.extra}


def display_name(raw: str | None, index: int) -> str:
    """The client's file name without directories or control characters, at most 200 chars (display only)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("", name).strip()
    return name[:200] or f"image-{index + 1}"


def _size_of(stream: BinaryIO) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def _naming(name: str, index: int, count: int, message: str) -> str:
    """The message about one file: by position and name in a request of several, by name alone in a request
    of one (a browser sending its files one per request would otherwise call every one of them "File 1")."""
    return f"File {index + 1} ({name!r}): {message}" if count > 1 else f"{name!r}: {message}"


def _reject(exc: ImageRejected, name: str, index: int, count: int) -> UploadRejected:
    return UploadRejected(exc.http_status, exc.code, _naming(name, index, count, exc.message), name, index)


def _decoder(data: bytes, limits: ImageLimits):
    """The work of one file: decode it in full (the check that it is whole); returns the normalised
    (width, height), EXIF orientation applied."""

    def work() -> tuple[int, int]:
        return load_image(data, limits).size

    return work


_NEW_JOB_COLUMNS = (
    "id", "user_id", "state", "stage", "progress", "filename", "width", "height", "size_bytes", "attempts",
    "cancel_requested", "created_at",
)  # fmt: skip


def _row(job: Job) -> dict:
    """The column values of a new job, as ``ingest`` sets them."""
    return {name: getattr(job, name) for name in _NEW_JOB_COLUMNS}


def ingest(
    session: Session,
    store: FileStore,
    user_id: str,
    files: list[UploadedFile],
    limits: ImageLimits,
    quotas: Quotas | None = None,
    gate: DecodeGate | None = None,
) -> list[Job]:
    """Validate, store and commit jobs for ``files``; returns the committed jobs in upload order.

    ``gate`` bounds the decodes (default: a gate as large as the biggest allowed image, never waiting).

    Raises UploadRejected (nothing stored) for any refused file, or re-raises a storage error after cleaning up.
    """
    if not files:
        raise UploadRejected(
            400,
            "no_images",
            "No images in the request: send one or more files in the multipart field 'image'.",
        )
    if len(files) > MAX_FILES_PER_REQUEST:
        raise UploadRejected(
            400,
            "too_many_files",
            f"The request has {len(files)} images, over the limit of {MAX_FILES_PER_REQUEST} per request.",
        )

    names = [display_name(f.name, i) for i, f in enumerate(files)]
    sizes: list[int] = []
    costs: list[int] = []
    for index, (upload, name) in enumerate(zip(files, names, strict=True)):
        size = _size_of(upload.stream)
        sizes.append(size)
        try:
            check_byte_size(size, limits)  # before reading the file into memory
        except ImageRejected as exc:
            raise _reject(exc, name, index, len(files)) from None
        try:
            header = open_checked(upload.stream.read(), limits)
        except ImageRejected as exc:
            raise _reject(exc, name, index, len(files)) from None
        costs.append(decode_cost(header.mode, *header.size))
    if quotas is not None:
        try:
            check_quotas(session, store.free_bytes(), user_id, quotas, len(files), sum(sizes))
        except QuotaExceeded as exc:
            raise UploadRejected(exc.status, exc.code, exc.message, **exc.extra) from None

    gate = gate or DecodeGate(max(costs), slots=1, wait_s=0)
    jobs: list[Job] = []
    try:
        for index, (upload, name, size, cost) in enumerate(zip(files, names, sizes, costs, strict=True)):
            job = Job(
                id=new_id(),
                user_id=user_id,
                state=QUEUED,
                stage=WAITING,
                progress=0.0,
                filename=name,
                size_bytes=size,
                attempts=0,
                cancel_requested=False,
            )
            jobs.append(job)  # before writing, so a half-written job is cleaned up too
            upload.stream.seek(0)
            try:
                job.width, job.height = gate.run(cost, _decoder(upload.stream.read(), limits))
            except ImageRejected as exc:
                raise _reject(exc, name, index, len(files)) from None
            except DecodeRefused as exc:
                raise UploadRejected(
                    exc.status,
                    exc.code,
                    _naming(name, index, len(files), exc.message),
                    name,
                    index,
                    **exc.extra,
                ) from None
        for upload in files:
            upload.stream.seek(0)
        # One write for the request's files, its flushes to disk grouped; off the event loop under gevent.
        offload(lambda: store.save_uploads([(job.id, f.stream) for job, f in zip(jobs, files, strict=True)]))
        # Creation times are stamped just before the commit, a microsecond apart: the fair queue order sorts a
        # user's jobs by (created_at, id), so this keeps the upload order (not the random ids'), and a request
        # that took long to decode does not jump ahead of one committed while it was decoding.
        committed_at = utcnow()
        for index, job in enumerate(jobs):
            job.created_at = committed_at + timedelta(microseconds=index)
        # One multi-row INSERT through Core: the ORM's unit of work costs several times more per row, and these
        # rows need none of it (the Job objects stay as built, detached, for the answer).
        session.execute(insert(Job), [_row(job) for job in jobs])
        session.commit()
    except BaseException:
        session.rollback()
        for job in jobs:
            store.remove_job(job.id)
        raise
    return jobs
