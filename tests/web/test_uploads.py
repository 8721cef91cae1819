"""POST /api/jobs: the happy path, every refusal (with nothing left behind), conversions, limits, rate limit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select
from webtools import Visitor, png

from backend.storage.db import session_scope
from backend.storage.files import JobFile, LocalFileStore
from backend.storage.models import Job
from backend.web import create_app
from backend.web.preparing import EXTENSION as PREPARER


def job_rows(app) -> int:
    with session_scope(app.extensions["maskweb"].engine) as db:
        return db.scalar(select(func.count()).select_from(Job))


def files_on_disk(settings) -> list[str]:
    root = settings.data_dir / "jobs"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def assert_nothing_stored(app, settings):
    assert job_rows(app) == 0
    assert files_on_disk(settings) == []


def test_upload_stores_rows_then_submits_and_originals_and_thumbnails_follow(app, settings, visitor, queue):
    jpeg = png(640, 480, (10, 120, 200), fmt="JPEG", quality=95)
    jobs = visitor.upload((jpeg, "holiday.jpg"), (png(50, 40), "b.png"))
    assert [j["filename"] for j in jobs] == ["holiday.jpg", "b.png"]
    assert [j["state"] for j in jobs] == ["queued", "queued"]
    assert [j["stage"] for j in jobs] == ["waiting", "waiting"]
    assert [j["queue_position"] for j in jobs] == [1, 2]
    assert (jobs[0]["width"], jobs[0]["height"]) == (640, 480)
    assert queue.submitted == [[j["id"] for j in jobs]]
    data = LocalFileStore(settings.data_dir)
    for job in jobs:
        app.extensions[PREPARER].ensure(job["id"])  # made in the background after the answer
        assert not data.exists(job["id"], JobFile.UPLOAD)  # replaced by the original and thumbnail
        with Image.open(data.path(job["id"], JobFile.ORIGINAL)) as original:
            assert original.format == "PNG" and original.mode == "RGB"
            assert original.size == (job["width"], job["height"])
        with Image.open(data.path(job["id"], JobFile.THUMBNAIL)) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) <= 320
    assert job_rows(app) == 2
    # what was stored is what the API serves
    image = visitor.get(jobs[0]["urls"]["image"])
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data == data.path(jobs[0]["id"], JobFile.ORIGINAL).read_bytes()
    thumb = visitor.get(jobs[0]["urls"]["thumbnail"])
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"


def test_one_request_queues_its_images_in_upload_order(app, visitor, queue):
    names = [f"photo-{i}.png" for i in range(8)]
    jobs = visitor.upload(*[(png(20 + i, 20), name) for i, name in enumerate(names)])
    assert [j["filename"] for j in jobs] == names
    assert [j["queue_position"] for j in jobs] == list(range(1, len(names) + 1))
    listed = visitor.get("/api/jobs").get_json()["jobs"]
    assert [j["filename"] for j in listed] == names[::-1]  # gallery: newest first


def test_file_names_are_display_only(app, settings, visitor):
    (job,) = visitor.upload((png(), "../../etc/passwd\x00.png"))
    app.extensions[PREPARER].ensure(job["id"])
    assert job["filename"] == "passwd.png"
    assert files_on_disk(settings) == sorted(
        [job["id"], f"{job['id']}/original.png", f"{job['id']}/thumbnail.jpg"]
    )


def _bomb() -> bytes:
    import struct
    import zlib

    def chunk(kind, payload):
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def _truncated() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()[:1500]


BAD_INPUTS = {
    "not_an_image": (b"just some text, not a picture", 415, "JPEG, PNG, WebP, BMP, TIFF or GIF"),
    "unsupported_format": (png(fmt="PPM"), 415, "PPM"),
    "too_many_pixels": (_bomb(), 413, "10000 megapixels, over the limit of 40 megapixels"),
    "truncated": (_truncated(), 400, "truncated"),
    "empty": (b"", 400, "empty"),
}


@pytest.mark.parametrize("code", sorted(BAD_INPUTS))
def test_each_bad_input_is_refused_with_its_reason_and_nothing_is_kept(app, settings, visitor, queue, code):
    data, status, words = BAD_INPUTS[code]
    # the bad file comes second: the good first one must not be kept either (all or nothing)
    body = visitor.upload((png(), "good.png"), (data, "bad.jpg"), expect=status)
    error = body["error"]
    assert error["code"] == code and error["status"] == status
    assert error["filename"] == "bad.jpg" and error["index"] == 1
    assert "bad.jpg" in error["message"] and words in error["message"]
    assert error["message"].startswith("File 2 ('bad.jpg'): ")
    assert_nothing_stored(app, settings)
    assert queue.submitted == []


def test_a_refused_file_sent_alone_is_named_without_a_position(visitor):
    """A browser sends one file per request: its second file must not be called "File 1"."""
    error = visitor.upload((b"just some text", "second.png"), expect=415)["error"]
    assert error["message"].startswith("'second.png': ") and "File 1" not in error["message"]


def test_per_file_size_limit(app, settings, queue, tmp_path):
    settings.max_file_mb = 10 / 1024  # 10 KB
    app = create_app(settings, submit=queue.submit, cancel=queue.cancel)
    noisy = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "PNG")
    body = Visitor(app).upload((buf.getvalue(), "big.png"), expect=413)
    assert body["error"]["code"] == "too_large"
    assert "over the limit of 10 KB per image" in body["error"]["message"]
    assert_nothing_stored(app, settings)


def test_per_request_size_limit(app, settings, queue):
    settings.max_request_mb = 50 / 1024  # 50 KB for the whole request
    app = create_app(settings, submit=queue.submit, cancel=queue.cancel)
    noisy = np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "BMP")  # ~19 KB each, each under the per-file limit
    body = Visitor(app).upload(*[(buf.getvalue(), f"{i}.bmp") for i in range(4)], expect=413)
    assert body["error"]["code"] == "request_too_large"
    assert "over the limit of 50 KB per upload request" in body["error"]["message"]
    assert_nothing_stored(app, settings)


def test_a_request_without_images(app, settings, visitor):
    response = visitor.post("/api/jobs", data={"other": "x"}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "no_images"
    assert_nothing_stored(app, settings)


def test_a_storage_failure_midway_leaves_nothing(app, settings, visitor, queue, monkeypatch):
    def full_disk_at_the_second(self, uploads):
        (first, stream), (second, _) = uploads[:2]
        self.save_upload(first, stream.read())  # the first one written whole
        self.job_dir(second).mkdir(parents=True)
        (self.job_dir(second) / "upload.bin").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LocalFileStore, "save_uploads", full_disk_at_the_second)
    response = visitor.post(
        "/api/jobs",
        data={"image": [(io.BytesIO(png()), "a.png"), (io.BytesIO(png()), "b.png")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 507  # a full disk is said as such (issue 10)
    assert response.get_json()["error"]["code"] == "storage_full"
    assert_nothing_stored(app, settings)
    assert queue.submitted == []


def test_jobs_stay_queued_when_the_queue_is_unreachable(app, visitor, queue):
    queue.fail = True
    (job,) = visitor.upload(png())
    assert visitor.get(f"/api/jobs/{job['id']}").get_json()["state"] == "queued"


def _stored(visitor, job) -> Image.Image:
    """The job's original as the API serves it (made from the upload by then: in the background or on the spot)."""
    response = visitor.get(job["urls"]["image"])
    assert response.status_code == 200 and response.mimetype == "image/png"
    with Image.open(io.BytesIO(response.data)) as img:
        img.load()
        return img


def _encode(img, fmt, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def test_exif_orientation_is_applied_before_storing(visitor):
    img = Image.new("RGB", (60, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 30, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    (job,) = visitor.upload((_encode(img, "JPEG", quality=95, exif=exif.tobytes()), "phone.jpg"))
    assert (job["width"], job["height"]) == (20, 60)
    stored = _stored(visitor, job)
    assert stored.size == (20, 60)
    red_top = stored.getpixel((10, 5))
    assert red_top[0] > 200 and red_top[2] < 60


def _gif_two_frames() -> bytes:
    frames = [Image.new("RGB", (12, 10), (255, 0, 0)), Image.new("RGB", (12, 10), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _palette_transparent() -> bytes:
    img = Image.new("P", (12, 10), 0)
    img.putpalette([0, 0, 0] + [0, 255, 0] + [0] * 762)
    img.putpixel((1, 1), 1)
    return _encode(img, "PNG", transparency=0)


CONVERSIONS = {
    "16-bit greyscale PNG": (lambda: _encode(Image.fromarray(np.full((10, 12), 257 * 100, np.uint16)), "PNG"), (100, 100, 100)),
    "16-bit TIFF": (lambda: _encode(Image.fromarray(np.full((10, 12), 65535, np.uint16)), "TIFF"), (255, 255, 255)),
    "CMYK JPEG": (lambda: _encode(Image.new("CMYK", (12, 10), (0, 0, 0, 0)), "JPEG", quality=100), (255, 255, 255)),
    "palette with transparency": (_palette_transparent, (255, 255, 255)),
    "RGBA fully transparent": (lambda: _encode(Image.new("RGBA", (12, 10), (0, 0, 0, 0)), "PNG"), (255, 255, 255)),
    "greyscale": (lambda: _encode(Image.new("L", (12, 10), 90), "PNG"), (90, 90, 90)),
    "GIF first frame": (_gif_two_frames, (255, 0, 0)),
    "WebP lossless": (lambda: _encode(Image.new("RGB", (12, 10), (1, 2, 3)), "WEBP", lossless=True), (1, 2, 3)),
    "BMP": (lambda: _encode(Image.new("RGB", (12, 10), (4, 5, 6)), "BMP"), (4, 5, 6)),
    "TIFF": (lambda: _encode(Image.new("RGB", (12, 10), (7, 8, 9)), "TIFF"), (7, 8, 9)),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(CONVERSIONS))
def test_conversions_store_8_bit_rgb(visitor, kind):
    make, pixel = CONVERSIONS[kind]
    (job,) = visitor.upload((make(), "x"))
    stored = _stored(visitor, job)
    assert stored.mode == "RGB" and stored.size == (12, 10)
    assert all(abs(a - b) <= 2 for a, b in zip(stored.getpixel((6, 5)), pixel, strict=True))


def test_uploads_are_rate_limited_per_caller(settings, queue):
    settings.upload_rate_limit = "2 per minute"
    app = create_app(settings, submit=queue.submit, cancel=queue.cancel)
    first, second = Visitor(app), Visitor(app)
    first.upload(png())
    first.upload(png())
    body = first.upload(png(), expect=429)
    assert body["error"]["code"] == "rate_limited" and "2 per 1 minute" in body["error"]["message"]
    assert body["error"]["limit"] == "uploads_per_identity"
    second.upload(png())  # another caller has its own allowance
    assert first.post("/api/tokens").status_code == 201  # token creation is counted on its own
