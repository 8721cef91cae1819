"""The data directory: paths from ids only, atomic writes, removal."""

from __future__ import annotations

import pytest
from PIL import Image

from backend.storage.files import DataDir, atomic_save_image, make_thumbnail
from backend.storage.models import new_id


@pytest.mark.parametrize("bad", ["../etc", "a" * 31, "A" * 32, "0" * 31 + "/", "", "..", "0" * 33])
def test_paths_come_from_job_ids_only(tmp_path, bad):
    data = DataDir(tmp_path)
    with pytest.raises(ValueError, match="not a job id"):
        data.job_dir(bad)


def test_files_live_under_the_job_directory(tmp_path):
    data, job_id = DataDir(tmp_path), new_id()
    img = Image.new("RGB", (640, 200), (10, 20, 30))
    data.save_original(job_id, img)
    data.save_overlay(job_id, img)
    data.save_result(job_id, {"width": 640, "height": 200, "instances": []})
    names = sorted(p.name for p in data.job_dir(job_id).iterdir())
    assert names == ["original.png", "overlay.png", "result.json", "thumbnail.jpg"]
    assert data.job_dir(job_id).parent == tmp_path.resolve() / "jobs"
    with Image.open(data.thumbnail(job_id)) as thumb:
        assert thumb.size == (320, 100) and thumb.format == "JPEG"
    with Image.open(data.original(job_id)) as orig:
        assert orig.size == (640, 200) and orig.mode == "RGB" and orig.format == "PNG"
    assert data.load_result(job_id) == {"width": 640, "height": 200, "instances": []}
    assert data.job_ids_on_disk() == [job_id]


def test_a_failed_write_leaves_the_old_file_and_no_partial_file(tmp_path):
    data, job_id = DataDir(tmp_path), new_id()
    data.save_thumbnail(job_id, Image.new("RGB", (8, 8), (255, 0, 0)))
    before = data.thumbnail(job_id).read_bytes()
    with pytest.raises(OSError):  # JPEG cannot hold RGBA: fails after the temp file was opened
        atomic_save_image(data.thumbnail(job_id), Image.new("RGBA", (8, 8)), "JPEG")
    assert [p.name for p in data.job_dir(job_id).iterdir()] == ["thumbnail.jpg"]
    assert data.thumbnail(job_id).read_bytes() == before


def test_remove_job_deletes_everything_and_tolerates_absence(tmp_path):
    data, job_id = DataDir(tmp_path), new_id()
    data.save_original(job_id, Image.new("RGB", (8, 8)))
    data.remove_job(job_id)
    assert not data.job_dir(job_id).exists()
    data.remove_job(job_id)
    assert data.load_result(job_id) is None


def test_thumbnail_never_upscales():
    assert make_thumbnail(Image.new("L", (50, 20))).size == (50, 20)
    assert make_thumbnail(Image.new("RGB", (1000, 2000))).size == (160, 320)
