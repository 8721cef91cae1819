"""A job's upload becoming its original and thumbnail (``backend.storage.originals``), on both stores: once,
whoever comes first, with nothing lost when it fails."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from test_files import as_image, stored_names
from test_files import store as store  # noqa: F401 (the two-store fixture)

from backend.segmentation.images import ImageRejected
from backend.storage.files import JobFile
from backend.storage.models import new_id
from backend.storage.originals import original_image, prepare, stored_limits

LIMITS = stored_limits(10_000_000)


def _jpeg_turned(width=60, height=20) -> bytes:
    """A JPEG whose EXIF says: rotate 90 degrees clockwise to display (left half red, right half blue)."""
    img = Image.new("RGB", (width, height), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def test_an_upload_becomes_its_original_and_thumbnail_once(store):
    job_id = new_id()
    store.save_upload(job_id, _jpeg_turned())
    assert not store.exists(job_id, JobFile.ORIGINAL)
    image = prepare(store, job_id, LIMITS)
    assert image.mode == "RGB" and image.size == (20, 60)  # normalised: orientation applied
    original = as_image(store.read(job_id, JobFile.ORIGINAL))
    assert original.format == "PNG" and original.size == (20, 60) and original.getpixel((10, 5))[0] > 200
    assert as_image(store.read(job_id, JobFile.THUMBNAIL)).format == "JPEG"
    assert stored_names(store, job_id) == ["original.png", "thumbnail.jpg"]  # the upload is gone
    assert prepare(store, job_id, LIMITS) is None  # nothing left to do
    assert original_image(store, job_id, LIMITS).tobytes() == image.tobytes()


def test_the_worker_reads_an_unprepared_upload_and_prepares_it(store):
    job_id = new_id()
    store.save_upload(job_id, _jpeg_turned())
    image = original_image(store, job_id, LIMITS)
    assert image.size == (20, 60)
    assert stored_names(store, job_id) == ["original.png", "thumbnail.jpg"]


def test_the_second_of_two_racing_preparers_keeps_the_first_ones_original(store, monkeypatch):
    job_id = new_id()
    store.save_upload(job_id, _jpeg_turned())
    first = prepare(store, job_id, LIMITS)
    # the other process read the upload before the first removed it: simulate by putting it back
    store.save_upload(job_id, _jpeg_turned())
    writes = []
    monkeypatch.setattr(store, "save_original", lambda *args: writes.append(args))
    assert prepare(store, job_id, LIMITS).tobytes() == first.tobytes()
    assert writes == []  # not written twice
    assert stored_names(store, job_id) == ["original.png", "thumbnail.jpg"]


def test_a_job_without_files_has_no_image(store):
    assert original_image(store, new_id(), LIMITS) is None


def test_an_upload_that_does_not_decode_is_kept(store):
    job_id = new_id()
    whole = _jpeg_turned(600, 400)
    store.save_upload(job_id, whole[: len(whole) // 2])
    with pytest.raises(ImageRejected):
        prepare(store, job_id, LIMITS)
    assert stored_names(store, job_id) == ["upload.bin"]


def test_preparing_goes_through_the_callers_admission_with_the_decode_cost(store):
    job_id = new_id()
    store.save_upload(job_id, _jpeg_turned())
    asked = []

    def admit(cost, work):
        asked.append(cost)
        return work()

    prepare(store, job_id, LIMITS, admit)
    assert len(asked) == 1 and asked[0] >= 20 * 60 * 3  # at least the RGB pixels
