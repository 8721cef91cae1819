"""A job's state, result and files; cancel; delete; the gallery."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from webtools import complete, png, set_state

from backend.storage.db import session_scope
from backend.storage.files import LocalFileStore
from backend.storage.models import Job, ShareLink


def test_a_job_reads_back_with_its_queue_position(visitor, other_visitor):
    other_visitor.upload(png())
    (job,) = visitor.upload(png())
    body = visitor.get(f"/api/jobs/{job['id']}").get_json()
    assert body["id"] == job["id"] and body["state"] == "queued" and body["queue_position"] == 2
    assert body["urls"]["result"] is None


def test_result_and_overlay_wait_for_done(app, visitor):
    (job,) = visitor.upload(png(40, 30))
    for suffix in ("/result", "/overlay"):
        response = visitor.get(f"/api/jobs/{job['id']}{suffix}")
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "not_ready"
        assert response.get_json()["error"]["state"] == "queued"
    result = complete(app, job["id"], classes=("person", "dog"), scores=(0.9, 0.8))
    assert visitor.get(f"/api/jobs/{job['id']}/result").get_json() == result
    overlay = visitor.get(f"/api/jobs/{job['id']}/overlay")
    assert overlay.status_code == 200 and overlay.mimetype == "image/png"
    body = visitor.get(f"/api/jobs/{job['id']}").get_json()
    assert body["state"] == "done" and body["queue_position"] is None
    assert body["classes"] == ["dog", "person"] and body["instance_count"] == 2
    assert body["urls"]["result"] == f"/api/jobs/{job['id']}/result"


def test_malformed_job_ids_are_404(visitor):
    for job_id in ("..%2F..%2Fsecret_key", "x" * 32, "0" * 31):
        assert visitor.get(f"/api/jobs/{job_id}").status_code == 404


def test_cancel_a_queued_job_at_once(visitor, queue):
    (job,) = visitor.upload(png())
    response = visitor.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 200
    body = response.get_json()
    assert body["state"] == "cancelled" and body["stage"] is None and body["queue_position"] is None
    assert queue.cancelled == [job["id"]]
    again = visitor.post(f"/api/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_finished"


def test_cancel_a_running_job_asks_the_worker(app, visitor, queue):
    (job,) = visitor.upload(png())
    set_state(app, job["id"], state="running", stage="model")
    response = visitor.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 202
    body = response.get_json()
    assert body["state"] == "running" and body["cancel_requested"] is True
    assert queue.cancelled == [job["id"]]


def test_cancel_a_done_job_is_a_conflict(app, visitor, queue):
    (job,) = visitor.upload(png())
    complete(app, job["id"])
    response = visitor.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 409
    assert visitor.get(f"/api/jobs/{job['id']}").get_json()["state"] == "done"
    assert queue.cancelled == []


@pytest.mark.parametrize("state", ["done", "running"])
def test_delete_removes_the_row_files_and_share_links(app, settings, visitor, queue, state):
    (job,) = visitor.upload(png())
    (kept,) = visitor.upload(png())
    complete(app, job["id"])
    if state == "running":
        set_state(app, job["id"], state="running", stage="masks")
    token = visitor.post(f"/api/jobs/{job['id']}/share").get_json()["token"]
    data = LocalFileStore(settings.data_dir)
    assert data.job_dir(job["id"]).is_dir()
    assert visitor.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert not data.job_dir(job["id"]).exists()
    assert data.job_dir(kept["id"]).is_dir()
    assert visitor.get(f"/api/jobs/{job['id']}").status_code == 404
    assert visitor.get(f"/api/shared/{token}").status_code == 404
    with session_scope(app.extensions["maskweb"].engine) as db:
        assert db.get(Job, job["id"]) is None
        assert db.scalars(select(ShareLink)).all() == []
    assert queue.cancelled == ([job["id"]] if state == "running" else [])
    assert visitor.delete(f"/api/jobs/{job['id']}").status_code == 404


def test_gallery_newest_first_with_cursor_pagination(visitor, other_visitor):
    other_visitor.upload(png())
    ids = [visitor.upload(png())[0]["id"] for _ in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        query = "/api/jobs?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = visitor.get(query).get_json()
        seen += [j["id"] for j in body["jobs"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1] and pages == 3
    assert len(visitor.get("/api/jobs").get_json()["jobs"]) == 5  # default limit 24


def test_gallery_filters_by_detected_class(app, visitor):
    jobs = [visitor.upload(png())[0]["id"] for _ in range(3)]
    complete(app, jobs[0], classes=("person", "dog"), scores=(0.9, 0.5))
    complete(app, jobs[1], classes=("dog",))
    complete(app, jobs[2], classes=("traffic light",))
    assert [j["id"] for j in visitor.get("/api/jobs?class=dog").get_json()["jobs"]] == [jobs[1], jobs[0]]
    assert [j["id"] for j in visitor.get("/api/jobs?class=traffic light").get_json()["jobs"]] == [jobs[2]]
    assert visitor.get("/api/jobs?class=cat").get_json() == {"jobs": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "bad_limit"),
        ("limit=101", "bad_limit"),
        ("limit=ten", "bad_limit"),
        ("cursor=zzz", "bad_cursor"),
    ],
)
def test_gallery_refuses_bad_parameters(visitor, query, code):
    response = visitor.get(f"/api/jobs?{query}")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code
