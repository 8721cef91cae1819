"""Per-user quotas (unfinished jobs, stored bytes) and the free-disk guard: each refusal names its limit,
happens before anything is decoded or written, and leaves nothing behind."""

from __future__ import annotations

import io
import shutil

from test_uploads import assert_nothing_stored, job_rows
from webtools import Visitor, png, set_state

from backend.web import create_app


def _app(settings, queue):
    return create_app(settings, submit=queue.submit, cancel=queue.cancel)


def test_unfinished_jobs_are_capped_per_user(settings, queue):
    settings.max_queued_per_user = 3
    app = _app(settings, queue)
    visitor, other = Visitor(app), Visitor(app)
    jobs = visitor.upload(png(), png())
    body = visitor.upload(png(), png(), expect=429)["error"]
    assert body["code"] == "quota_exceeded" and body["limit"] == "queued_jobs_per_user"
    assert (body["used"], body["allowed"]) == (2, 3)
    assert "over the limit of 3 per user" in body["message"]
    assert job_rows(app) == 2  # the refused request stored nothing
    other.upload(png(), png(), png())  # someone else's queue is theirs
    set_state(app, jobs[0]["id"], state="done", stage=None)  # a finished job frees its place
    visitor.upload(png(), png())


def test_stored_bytes_are_capped_per_user(settings, queue):
    image = png(64, 64)
    settings.max_stored_mb_per_user = 2.5 * len(image) / (1024 * 1024)  # room for two such files
    app = _app(settings, queue)
    visitor = Visitor(app)
    first = visitor.upload(image)
    visitor.upload(image)
    body = visitor.upload(image, expect=403)["error"]
    assert body["code"] == "quota_exceeded" and body["limit"] == "stored_bytes_per_user"
    assert body["used"] == 2 * len(image) and "delete some images" in body["message"]
    assert visitor.delete(f"/api/jobs/{first[0]['id']}").status_code == 204  # deleting makes room
    visitor.upload(image)


def test_uploads_stop_before_the_disk_falls_below_the_margin(settings, queue):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(settings.data_dir).free / (1024 * 1024)
    settings.min_free_disk_mb = free_mb + 64  # the disk is already below the margin
    app = _app(settings, queue)
    response = Visitor(app).post("/api/jobs", data={"image": [(io.BytesIO(png()), "a.png")]})
    assert response.status_code == 507
    body = response.get_json()["error"]
    assert body["code"] == "insufficient_storage" and body["limit"] == "free_disk"
    assert "disk is almost full" in body["message"] and int(response.headers["Retry-After"]) > 0
    assert_nothing_stored(app, settings)
    assert queue.submitted == []


def test_the_session_states_the_quotas(settings, queue):
    settings.max_queued_per_user = 7
    limits = Visitor(_app(settings, queue)).get("/api/session").get_json()["limits"]
    assert limits["max_queued_jobs_per_user"] == 7
    assert limits["max_stored_bytes_per_user"] == settings.max_stored_bytes_per_user
