"""A job's original and thumbnail, made from its upload off the upload request's path.

An upload request only validates each file (a full decode, so a truncated file is refused with the rest of the
request) and stores its bytes as received (``JobFile.UPLOAD``): one write. Normalising it into ``original.png``
(8-bit RGB, EXIF orientation applied) and ``thumbnail.jpg`` costs far more — a 12 MP photo takes about a second
to encode as PNG — so it happens afterwards, by whoever needs the files first:

- the web process, in the background right after answering the upload;
- a browser asking for the image or thumbnail before that (the web prepares it then and there);
- the worker, whose ``decode`` stage needs the pixels anyway.

``prepare`` is idempotent and safe to race: every write is whole (atomic), both writers produce the same files,
and the upload is removed only after the original and thumbnail are stored. Whoever comes second finds the
original and reads it instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from PIL import Image

from backend.segmentation.images import ImageLimits, decode_cost, load_image, open_checked

from .files import FileStore, JobFile

T = TypeVar("T")
Admit = Callable[[int, Callable[[], T]], T]  # admit(peak bytes, work) runs work when memory allows


def _at_once(cost: int, work: Callable[[], T]) -> T:
    return work()


def stored_limits(max_pixels: int) -> ImageLimits:
    """Limits for decoding a job's stored files again: they passed the upload's limits already, and an original
    stored as PNG may be larger in bytes than the upload was (4 bytes a pixel at most, plus headers)."""
    return ImageLimits(max_bytes=4 * max_pixels + (1 << 20), max_pixels=max_pixels)


def prepare(
    store: FileStore, job_id: str, limits: ImageLimits, admit: Admit = _at_once
) -> Image.Image | None:
    """Make the job's original and thumbnail from its upload, then remove the upload.

    ``admit(cost, work)`` runs the decoding and encoding, ``cost`` being its peak memory in bytes from the
    file's header (the web passes its ``DecodeGate.run``; the default runs it at once). Returns the normalised
    image (8-bit RGB), or None when there is no upload to prepare (prepared already, by this process or another
    one, or the job is gone). Raises ``ImageRejected`` for an upload that no longer decodes, what ``admit``
    raises, and the store's errors (a full disk, an unreachable bucket); the upload is kept then.
    """
    data = store.read(job_id, JobFile.UPLOAD)
    if data is None:
        return None
    header = open_checked(data, limits)
    cost = decode_cost(header.mode, *header.size)
    del header

    def work() -> Image.Image:
        image = load_image(data, limits)
        if not store.exists(job_id, JobFile.ORIGINAL):  # another process may have been faster
            store.save_original(job_id, image)
        return image

    image = admit(cost, work)
    store.remove(job_id, JobFile.UPLOAD)
    return image


def original_image(store: FileStore, job_id: str, limits: ImageLimits) -> Image.Image | None:
    """The job's normalised image (8-bit RGB), preparing it from the upload when that has not happened yet.

    Returns None when the job has neither an original nor an upload (deleted, or its files lost). Raises
    ``ImageRejected`` for a stored file that does not decode, and the store's errors.
    """
    for _ in range(2):
        original = store.read(job_id, JobFile.ORIGINAL)
        if original is not None:
            return load_image(original, limits)
        image = prepare(store, job_id, limits)
        if image is not None:
            return image
        # Neither: another process may have finished preparing between our two reads; look once more.
    return None
