"""The data directory: every file maskweb writes lives under one root, at a path made from a job id.

Layout::

    <root>/jobs/<job id>/original.png    the upload, normalised to 8-bit RGB, EXIF orientation applied
    <root>/jobs/<job id>/thumbnail.jpg   at most THUMBNAIL_SIZE px on the long side
    <root>/jobs/<job id>/result.json     the segmentation (docs/ARCHITECTURE.md, "Result contract")
    <root>/jobs/<job id>/overlay.png     the rendered overlay

Job ids are 32 lowercase hex characters; anything else raises ValueError, so user input can never become a
path. Writes go to a temporary file in the same directory and are renamed into place, so a reader sees the
old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from PIL import Image

from backend.atomic import atomic_write, atomic_write_bytes

THUMBNAIL_SIZE = 320
# zlib level 1: a 12 MP photo encodes about twice as fast as at the default level for ~15% more bytes;
# the upload request waits on this, the disk hardly notices.
PNG_COMPRESS_LEVEL = 1
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is 32 lowercase hex characters, else raise ValueError."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


def atomic_save_image(path: Path, img: Image.Image, format: str, **params: Any) -> None:
    """Encode ``img`` as ``format`` (``PNG``/``JPEG``) and write it atomically."""
    atomic_write(path, lambda f: img.save(f, format=format, **params))


def make_thumbnail(img: Image.Image, size: int = THUMBNAIL_SIZE) -> Image.Image:
    """A copy of ``img`` in RGB, scaled down (never up) so its long side is at most ``size`` px."""
    thumb = img.convert("RGB") if img.mode != "RGB" else img.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    return thumb


class DataDir:
    """The data directory rooted at ``root`` (created on first write)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.jobs_root = self.root / "jobs"

    # --- paths (from ids only) ------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_root / check_job_id(job_id)

    def original(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "original.png"

    def thumbnail(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "thumbnail.jpg"

    def result_json(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "result.json"

    def overlay(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "overlay.png"

    # --- writing ----------------------------------------------------------------------------------------------

    def save_original(self, job_id: str, img: Image.Image) -> Path:
        """Write the normalised RGB original as PNG and its thumbnail as JPEG; returns the original's path."""
        path = self.original(job_id)
        atomic_save_image(path, img, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        self.save_thumbnail(job_id, img)
        return path

    def save_thumbnail(self, job_id: str, img: Image.Image) -> Path:
        path = self.thumbnail(job_id)
        atomic_save_image(path, make_thumbnail(img), "JPEG", quality=85)
        return path

    def save_overlay(self, job_id: str, img: Image.Image) -> Path:
        path = self.overlay(job_id)
        atomic_save_image(path, img, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        return path

    def save_result(self, job_id: str, result: dict[str, Any]) -> Path:
        """Write the result JSON (a dict in the result contract's shape)."""
        path = self.result_json(job_id)
        atomic_write_bytes(path, json.dumps(result, separators=(",", ":")).encode())
        return path

    # --- reading and removing -----------------------------------------------------------------------------------

    def load_result(self, job_id: str) -> dict[str, Any] | None:
        """The result JSON as a dict, or None when it has not been written."""
        try:
            return json.loads(self.result_json(job_id).read_text())
        except FileNotFoundError:
            return None

    def remove_job(self, job_id: str) -> None:
        """Delete the job's directory and everything in it; a missing directory is fine."""
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def job_ids_on_disk(self) -> list[str]:
        """Ids of job directories present (for finding orphans)."""
        if not self.jobs_root.is_dir():
            return []
        return sorted(p.name for p in self.jobs_root.iterdir() if p.is_dir() and _JOB_ID.match(p.name))
