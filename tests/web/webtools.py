"""Helpers for web tests: a queue recorder, a browser-like visitor, a script with a bearer token, images,
and finishing jobs through storage as a worker would."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image


@dataclass
class QueueRecorder:
    """Stands in for backend.jobs: records what the web asked of the queue."""

    submitted: list[list[str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    fail: bool = False

    def submit(self, settings, job_ids):
        if self.fail:
            raise ConnectionError("Redis is down")
        self.submitted.append(list(job_ids))

    def cancel(self, settings, job):
        self.cancelled.append(job.id)


def png(width=32, height=24, color=(200, 40, 60), fmt="PNG", mode="RGB", **params) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), color).save(buf, format=fmt, **params)
    return buf.getvalue()


class Visitor:
    """A browser: identity cookie from GET /api/session, CSRF header on state-changing requests."""

    def __init__(self, app, address: str = "127.0.0.1"):
        self.client = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address
        session = self.client.get("/api/session").get_json()
        self.user_id = session["user_id"]
        self.csrf = session["csrf_token"]

    def headers(self):
        return {"X-CSRF-Token": self.csrf}

    def get(self, url, **kw):
        return self.client.get(url, **kw)

    def post(self, url, **kw):
        return self.client.post(url, headers=self.headers(), **kw)

    def delete(self, url, **kw):
        return self.client.delete(url, headers=self.headers(), **kw)

    def upload(self, *images: bytes | tuple[bytes, str], expect=202):
        files = [img if isinstance(img, tuple) else (img, f"image{i}.png") for i, img in enumerate(images)]
        response = self.post(
            "/api/jobs",
            data={"image": [(io.BytesIO(data), name) for data, name in files]},
            content_type="multipart/form-data",
        )
        assert response.status_code == expect, response.get_json()
        return response.get_json()["jobs"] if expect == 202 else response.get_json()


class Script(Visitor):
    """A script with a bearer token and no cookie."""

    def __init__(self, app):
        bootstrap = app.test_client()
        body = bootstrap.post("/api/tokens").get_json()
        self.token, self.user_id = body["token"], body["user_id"]
        self.client = app.test_client()
        self.csrf = None

    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, url, **kw):
        return self.client.get(url, headers=self.headers(), **kw)


def complete(app, job_id: str, classes=("person",), scores=(0.9,)) -> dict:
    """Finish a job as a worker would: result JSON, overlay PNG, the row marked done (through storage)."""
    from backend.storage.db import session_scope
    from backend.storage.models import DONE, Job, utcnow

    svc = app.extensions["maskweb"]
    with session_scope(svc.engine) as db:
        job = db.get(Job, job_id)
        width, height = job.width, job.height
        instances = [
            {"id": i, "class_id": i + 1, "class_name": name, "score": score, "box": [0, 0, 2, 2],
             "mask": {"size": [height, width], "counts": "0"}}
            for i, (name, score) in enumerate(zip(classes, scores, strict=False))
        ]  # fmt: skip
        result = {"width": width, "height": height, "instances": instances}
        svc.files.save_result(job_id, result)
        svc.files.save_overlay(job_id, Image.new("RGB", (width, height), (0, 255, 0)))
        job.state, job.stage, job.progress = DONE, None, 1.0
        job.started_at = job.finished_at = utcnow()
        job.instance_count, job.classes = len(instances), sorted(set(classes))
        job.timings = {"decode": 0.01, "model": 0.5, "masks": 0.1, "saving": 0.02}
    return result


def set_state(app, job_id: str, **values) -> None:
    from backend.storage.db import session_scope
    from backend.storage.models import Job

    with session_scope(app.extensions["maskweb"].engine) as db:
        job = db.get(Job, job_id)
        for key, value in values.items():
            setattr(job, key, value)
