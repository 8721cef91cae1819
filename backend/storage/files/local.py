"""The local data directory (the default store): ``<root>/jobs/<job id>/<file name>``.

Writes go to a temporary file in the same directory, are flushed to disk and renamed into place
(``backend.atomic``). Every process using it must see the same directory: one machine, or a shared
filesystem mounted at the same place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from backend.atomic import atomic_write, atomic_write_many

from .base import FileStore, JobFile, StoredFile, check_job_id, is_job_id


class LocalFileStore(FileStore):
    """Files under ``root`` (created on first write)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.jobs_root = self.root / "jobs"

    def describe(self) -> str:
        return str(self.jobs_root)

    def check(self) -> None:
        self.jobs_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(
            dir=self.jobs_root
        ):  # a real write: permissions, read-only mounts, quotas
            pass

    def free_bytes(self) -> int:
        folder = self.root
        while not folder.exists() and folder != folder.parent:  # before the first write
            folder = folder.parent
        return shutil.disk_usage(folder).free

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_root / check_job_id(job_id)

    def path(self, job_id: str, kind: JobFile) -> Path:
        return self.job_dir(job_id) / kind.filename

    def _write(self, job_id: str, kind: JobFile, write: Callable[[BinaryIO], object]) -> None:
        atomic_write(self.path(job_id, kind), write)

    def save_uploads(self, uploads: list[tuple[str, BinaryIO]]) -> None:
        atomic_write_many(
            [
                (
                    self.path(check_job_id(job_id), JobFile.UPLOAD),
                    lambda f, s=stream: shutil.copyfileobj(s, f),
                )
                for job_id, stream in uploads
            ]
        )

    def open(self, job_id: str, kind: JobFile) -> StoredFile | None:
        try:
            stream = open(self.path(job_id, kind), "rb")  # noqa: SIM115 (the StoredFile owns it)
        except FileNotFoundError:
            return None
        stat = os.fstat(stream.fileno())
        return StoredFile(stream, stat.st_size, stat.st_mtime, f"{stat.st_mtime_ns:x}-{stat.st_size:x}")

    def remove(self, job_id: str, kind: JobFile) -> None:
        self.path(job_id, kind).unlink(missing_ok=True)

    def remove_job(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def job_ages(self) -> dict[str, float]:
        if not self.jobs_root.is_dir():
            return {}
        ages = {}
        for entry in os.scandir(self.jobs_root):
            if entry.is_dir() and is_job_id(entry.name):
                try:
                    ages[entry.name] = entry.stat().st_mtime  # a rename into the directory updates it
                except FileNotFoundError:
                    continue  # removed meanwhile
        return ages
