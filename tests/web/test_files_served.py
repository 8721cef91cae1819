"""Job files through the API on both stores: what the browser gets is what storage holds, streamed through
the web with conditional requests, behind the same access checks (a revoked share link stops at once)."""

from __future__ import annotations

import re

import pytest
from webtools import Visitor, complete, png

from backend.storage.files import JobFile, S3FileStore
from backend.web import create_app
from backend.web.preparing import EXTENSION as PREPARER


@pytest.fixture(params=["local", "s3"])
def served(request, settings, queue, monkeypatch):
    """(app, store): the app on the local data directory, or on a moto bucket configured the way a deployment
    is (MASKWEB_STORAGE_URL's value plus boto3's own environment variables)."""
    if request.param == "s3":
        server = request.getfixturevalue("moto_s3")
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        settings.storage_url = f"s3://{server.new_bucket()}/maskweb"
    app = create_app(settings, submit=queue.submit, cancel=queue.cancel)
    store = app.extensions["maskweb"].files
    assert isinstance(store, S3FileStore) == (request.param == "s3")
    yield app, store
    app.extensions["maskweb"].engine.dispose()


def test_files_are_streamed_from_storage_with_conditional_requests(served):
    app, store = served
    visitor = Visitor(app)
    (job,) = visitor.upload(png(64, 48))
    image = visitor.get(job["urls"]["image"])
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data == store.read(job["id"], JobFile.ORIGINAL)
    assert image.content_length == len(image.data) and image.headers["ETag"]
    again = visitor.get(job["urls"]["image"], headers={"If-None-Match": image.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert visitor.get(job["urls"]["thumbnail"]).data == store.read(job["id"], JobFile.THUMBNAIL)
    complete(app, job["id"])
    overlay = visitor.get(f"/api/jobs/{job['id']}/overlay")
    assert overlay.status_code == 200 and overlay.data == store.read(job["id"], JobFile.OVERLAY)
    assert visitor.get(f"/api/jobs/{job['id']}/result").get_json() == store.load_result(job["id"])


def test_a_file_asked_for_before_the_background_made_it_is_made_on_the_spot(served, monkeypatch):
    app, store = served
    monkeypatch.setattr(app.extensions[PREPARER], "schedule", lambda job_ids: None)  # no background
    visitor = Visitor(app)
    sent = png(40, 30)
    (job,) = visitor.upload(sent)
    assert store.read(job["id"], JobFile.UPLOAD) == sent  # the upload, as received
    assert not store.exists(job["id"], JobFile.ORIGINAL) and not store.exists(job["id"], JobFile.THUMBNAIL)
    thumbnail = visitor.get(job["urls"]["thumbnail"])
    assert thumbnail.status_code == 200 and thumbnail.data == store.read(job["id"], JobFile.THUMBNAIL)
    image = visitor.get(job["urls"]["image"])
    assert image.status_code == 200 and image.data == store.read(job["id"], JobFile.ORIGINAL)
    assert not store.exists(job["id"], JobFile.UPLOAD)  # replaced by the two


def test_a_file_missing_from_storage_is_a_clear_404(served):
    app, store = served
    visitor = Visitor(app)
    (job,) = visitor.upload(png())
    app.extensions[PREPARER].ensure(job["id"])  # the upload became its original and thumbnail
    store.remove(job["id"], JobFile.THUMBNAIL)
    response = visitor.get(job["urls"]["thumbnail"])
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert (error["code"], error["message"]) == (
        "file_missing",
        "The job's thumbnail file is missing from storage.",
    )


def test_a_revoked_share_link_stops_serving_and_delete_empties_storage(served):
    app, store = served
    owner, stranger = Visitor(app), Visitor(app)
    (job,) = owner.upload(png())
    complete(app, job["id"])
    token = owner.post(f"/api/jobs/{job['id']}/share").get_json()["token"]
    shared = stranger.get(f"/api/shared/{token}/overlay")
    assert shared.status_code == 200 and shared.data == store.read(job["id"], JobFile.OVERLAY)
    assert owner.delete(f"/api/jobs/{job['id']}/share").status_code == 200
    assert stranger.get(f"/api/shared/{token}/overlay").status_code == 404
    assert stranger.get(f"/api/shared/{token}/image").status_code == 404
    assert owner.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert store.job_ages() == {}


def test_readyz_says_whether_the_file_store_can_be_written(served, settings):
    app, store = served
    client = app.test_client()  # from this host: every detail
    storage = client.get("/readyz").get_json()["checks"]["storage"]
    assert storage["ok"] is True and storage["where"] == store.describe()
    if isinstance(store, S3FileStore):
        store.client.delete_bucket(Bucket=store.bucket)  # empty: the app wrote nothing yet
        expected = "NoSuchBucket|Not Found|404"
    else:
        store.jobs_root.rmdir()  # empty: the app wrote nothing yet
        store.jobs_root.write_text("a file where the jobs folder should be")
        expected = "FileExistsError|NotADirectoryError"
    response = client.get("/readyz")
    storage = response.get_json()["checks"]["storage"]
    assert response.status_code == 503 and storage["ok"] is False
    assert re.search(expected, storage["error"]), storage
