"""Job files: one suite, run on both stores (the local data directory, and a bucket on moto's S3 server).

Each test takes ``store`` and runs twice: ``[local]`` and ``[s3]``. ``stored_names`` looks inside each
store the way an operator would (``ls`` / ``aws s3 ls``), to prove nothing half-written is left.
"""

from __future__ import annotations

import io
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from backend.settings import Settings
from backend.storage.files import (
    FileStore,
    JobFile,
    LocalFileStore,
    S3FileStore,
    make_thumbnail,
    open_file_store,
    parse_storage_url,
)
from backend.storage.files.s3 import SPOOL_BYTES
from backend.storage.models import new_id


def _local(tmp_path, _request) -> LocalFileStore:
    return LocalFileStore(tmp_path / "data")


def _s3(_tmp_path, request) -> S3FileStore:
    server = request.getfixturevalue("moto_s3")
    return S3FileStore(server.new_bucket(), "maskweb/test", client=server.client())


STORES = {"local": _local, "s3": _s3}


@pytest.fixture(params=sorted(STORES))
def store(request, tmp_path) -> FileStore:
    return STORES[request.param](tmp_path, request)


@pytest.fixture
def other_store(request, store, tmp_path) -> FileStore:
    """A second store of the same kind next to ``store``: another directory, or another prefix in the same
    bucket."""
    if isinstance(store, S3FileStore):
        return S3FileStore(store.bucket, "maskweb/other", client=store.client)
    return LocalFileStore(tmp_path / "other")


def stored_names(store: FileStore, job_id: str) -> list[str]:
    """Every file or object under the job, temporary ones included."""
    if isinstance(store, S3FileStore):
        prefix = store.key(job_id, JobFile.ORIGINAL).rsplit("/", 1)[0] + "/"
        listing = store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
        return sorted(obj["Key"][len(prefix) :] for obj in listing.get("Contents", []))
    folder = store.job_dir(job_id)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def as_image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize("bad", ["../etc", "a" * 31, "A" * 32, "0" * 31 + "/", "", "..", "0" * 33])
def test_paths_and_keys_come_from_job_ids_only(store, bad):
    for call in (
        lambda: store.save_result(bad, {}),
        lambda: store.save_original(bad, Image.new("RGB", (2, 2))),
        lambda: store.open(bad, JobFile.RESULT),
        lambda: store.remove(bad, JobFile.OVERLAY),
        lambda: store.remove_job(bad),
    ):
        with pytest.raises(ValueError, match="not a job id"):
            call()


def test_a_jobs_four_files_round_trip(store):
    job_id = new_id()
    img = Image.new("RGB", (640, 200), (10, 20, 30))
    store.save_original(job_id, img)
    store.save_overlay(job_id, Image.new("RGB", (640, 200), (200, 0, 0)))
    store.save_result(job_id, {"width": 640, "height": 200, "instances": []})
    assert stored_names(store, job_id) == ["original.png", "overlay.png", "result.json", "thumbnail.jpg"]
    original = as_image(store.read(job_id, JobFile.ORIGINAL))
    assert (original.format, original.mode, original.size) == ("PNG", "RGB", (640, 200))
    assert original.getpixel((5, 5)) == (10, 20, 30)
    thumb = as_image(store.read(job_id, JobFile.THUMBNAIL))
    assert (thumb.format, thumb.size) == ("JPEG", (320, 100))
    assert as_image(store.read(job_id, JobFile.OVERLAY)).getpixel((0, 0)) == (200, 0, 0)
    assert store.load_result(job_id) == {"width": 640, "height": 200, "instances": []}
    assert store.exists(job_id, JobFile.OVERLAY)
    assert list(store.job_ages()) == [job_id]


def test_missing_files_read_as_none(store):
    job_id = new_id()
    assert store.open(job_id, JobFile.ORIGINAL) is None
    assert store.read(job_id, JobFile.OVERLAY) is None
    assert store.load_result(job_id) is None
    assert not store.exists(job_id, JobFile.THUMBNAIL)
    assert store.job_ages() == {}


def test_opened_files_carry_size_time_and_an_etag_that_follows_the_content(store):
    job_id = new_id()
    before = time.time()
    store.save_result(job_id, {"n": 1})
    first = store.open(job_id, JobFile.RESULT)
    with first.stream:
        assert first.stream.read() == b'{"n":1}' and first.size == 7
    assert before - 2 <= first.modified <= time.time() + 2  # S3 keeps whole seconds
    store.save_result(job_id, {"n": 22})
    second = store.open(job_id, JobFile.RESULT)
    second.stream.close()
    assert second.size == 8 and second.etag != first.etag


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial_one(store):
    job_id = new_id()
    store.save_thumbnail(job_id, Image.new("RGB", (8, 8), (255, 0, 0)))
    before = store.read(job_id, JobFile.THUMBNAIL)
    with pytest.raises(OSError):  # JPEG cannot hold RGBA: fails after writing has begun
        store._save_image(job_id, JobFile.THUMBNAIL, Image.new("RGBA", (8, 8)), "JPEG")
    assert stored_names(store, job_id) == ["thumbnail.jpg"]
    assert store.read(job_id, JobFile.THUMBNAIL) == before


def test_a_file_larger_than_memory_spooling_round_trips(store):
    """Over SPOOL_BYTES the write spills to disk and S3 gets it in parts."""
    job_id = new_id()
    noise = np.random.default_rng(0).integers(0, 256, (1800, 1800, 3), dtype=np.uint8)
    store.save_original(job_id, Image.fromarray(noise))
    stored = store.open(job_id, JobFile.ORIGINAL)
    assert stored.size > SPOOL_BYTES
    with stored.stream:
        assert np.array_equal(np.asarray(as_image(stored.stream.read())), noise)


def test_remove_outputs_keeps_the_upload_and_remove_job_takes_everything(store):
    job_id, kept = new_id(), new_id()
    for one in (job_id, kept):
        store.save_original(one, Image.new("RGB", (8, 8)))
        store.save_result(one, {"instances": []})
        store.save_overlay(one, Image.new("RGB", (8, 8)))
    store.remove_outputs(job_id)
    assert stored_names(store, job_id) == ["original.png", "thumbnail.jpg"]
    store.remove_outputs(job_id)  # nothing left to remove: fine
    store.remove_job(job_id)
    assert stored_names(store, job_id) == [] and store.load_result(job_id) is None
    store.remove_job(job_id)
    assert list(store.job_ages()) == [kept] and len(stored_names(store, kept)) == 4


def test_job_ages_give_the_newest_write_of_each_job(store):
    old, new = new_id(), new_id()
    store.save_result(old, {})
    store.save_result(new, {})
    ages = store.job_ages()
    assert sorted(ages) == sorted([old, new])
    assert all(abs(age - time.time()) < 60 for age in ages.values())


def test_only_a_local_store_has_a_disk_to_fill(store):
    if isinstance(store, LocalFileStore):
        disk = shutil.disk_usage(store.root.parent).free  # the store's folder does not exist yet
        assert 0 < store.free_bytes() and abs(store.free_bytes() - disk) < 2**30  # others write meanwhile
    else:
        assert store.free_bytes() is None


def test_two_stores_never_see_each_others_jobs(store, other_store):
    mine, theirs = new_id(), new_id()
    store.save_result(mine, {"who": "me"})
    other_store.save_result(theirs, {"who": "them"})
    other_store.remove_job(mine)
    assert list(store.job_ages()) == [mine] and list(other_store.job_ages()) == [theirs]
    assert store.load_result(theirs) is None and store.load_result(mine) == {"who": "me"}


# --- choosing the store --------------------------------------------------------------------------------------


def test_settings_choose_the_store(tmp_path):
    local = open_file_store(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalFileStore) and local.describe() == str(tmp_path.resolve() / "jobs")
    bucket = open_file_store(Settings(data_dir=tmp_path, storage_url="s3://photos/maskweb/prod/"))
    assert isinstance(bucket, S3FileStore) and bucket.describe() == "s3://photos/maskweb/prod/jobs/"


@pytest.mark.parametrize("url", ["photos", "s3://", "s3:///prefix", "file:///data", "s3://b/p?x=1"])
def test_a_malformed_storage_url_says_what_is_expected(url):
    with pytest.raises(ValueError, match=r"MASKWEB_STORAGE_URL must look like s3://bucket"):
        parse_storage_url(url)


def test_thumbnail_never_upscales():
    assert make_thumbnail(Image.new("L", (50, 20))).size == (50, 20)
    assert make_thumbnail(Image.new("RGB", (1000, 2000))).size == (160, 320)
