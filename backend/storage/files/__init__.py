"""Job files behind one interface (``FileStore``), in the local data directory or an S3-compatible bucket.

``open_file_store(settings)`` picks the store: ``S3FileStore`` when ``settings.storage_url`` is set
(``s3://bucket/prefix``), else ``LocalFileStore`` under ``settings.data_dir``. The web writes uploads and
streams files to browsers through it; workers read originals and write results through it; nothing else
touches job files.
"""

from __future__ import annotations

from backend.settings import Settings

from .base import THUMBNAIL_SIZE, FileStore, JobFile, StoredFile, check_job_id, make_thumbnail
from .local import LocalFileStore
from .s3 import S3FileStore, parse_storage_url


def open_file_store(settings: Settings) -> FileStore:
    """The store ``settings`` name. ValueError for a malformed ``storage_url``."""
    if settings.storage_url:
        return S3FileStore.from_url(settings.storage_url)
    return LocalFileStore(settings.data_dir)


__all__ = [
    "THUMBNAIL_SIZE",
    "FileStore",
    "JobFile",
    "LocalFileStore",
    "S3FileStore",
    "StoredFile",
    "check_job_id",
    "make_thumbnail",
    "open_file_store",
    "parse_storage_url",
]
