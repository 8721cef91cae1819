"""/healthz, /readyz (database, Redis, live workers) and /metrics."""

from __future__ import annotations

import json

import redis
from webtools import complete, png

from backend.jobs.leases import WORKER_PREFIX
from backend.storage.db import make_engine
from backend.web import create_app


def test_healthz_answers(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"ok": True}


def test_readyz_without_redis_is_not_ready(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ready"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"] == {"ok": False, "error": "REDIS_URL is not set"}


def test_readyz_needs_a_live_worker(redis_settings, queue):
    app = create_app(redis_settings, submit=queue.submit, cancel=queue.cancel)
    client = app.test_client()
    body = client.get("/readyz").get_json()
    assert body["ready"] is False and body["checks"]["redis"]["ok"] is True
    assert body["checks"]["workers"]["count"] == 0 and "no live worker" in body["checks"]["workers"]["error"]

    r = redis.Redis.from_url(redis_settings.redis_url)
    r.set(WORKER_PREFIX + "gpu-box-1", json.dumps({"pid": 4242, "model_config": "coco"}), ex=30)
    response = client.get("/readyz")
    assert response.status_code == 200
    workers = response.get_json()["checks"]["workers"]
    assert workers["ok"] is True and workers["count"] == 1
    assert workers["workers"] == [{"hostname": "gpu-box-1", "pid": 4242, "model_config": "coco"}]
    r.close()


def test_readyz_reports_an_unreachable_database(app):
    app.extensions["maskweb"].engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    body = app.test_client().get("/readyz").get_json()
    assert body["ready"] is False and body["checks"]["database"]["ok"] is False
    assert "error" in body["checks"]["database"]


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def test_metrics_report_queue_depth_from_the_database_and_stage_timings(app, visitor, other_visitor):
    jobs = visitor.upload(png(), png(), png())
    other_visitor.upload(png())
    complete(app, jobs[0]["id"])
    visitor.upload((b"not an image", "x.txt"), expect=415)
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert _metric(text, 'maskweb_jobs{state="queued"}') == 3
    assert _metric(text, 'maskweb_jobs{state="done"}') == 1
    assert _metric(text, 'maskweb_jobs{state="failed"}') == 0
    assert _metric(text, "maskweb_queue_waiting") == 3
    assert _metric(text, 'maskweb_job_stage_seconds_count{stage="model"}') == 1
    assert _metric(text, 'maskweb_job_stage_seconds_sum{stage="model"}') == 0.5
    assert _metric(text, "maskweb_uploads_total") == 4
    assert _metric(text, 'maskweb_upload_rejections_total{code="not_an_image"}') == 1


def test_metrics_include_the_workers_durations_from_redis(redis_settings, queue):
    from backend.jobs.metrics import record_job

    app = create_app(redis_settings, submit=queue.submit, cancel=queue.cancel)
    record_job(redis_settings, "done", 3.0, model_seconds=2.0)
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert _metric(text, 'maskweb_job_duration_seconds_count{outcome="done"}') == 1
    assert _metric(text, "maskweb_model_duration_seconds_sum") == 2.0


REMOTE = {"REMOTE_ADDR": "203.0.113.7"}


def test_anonymous_remote_callers_get_status_and_counts_only(redis_settings, queue):
    """Worker host names, pids and error texts are for operators: the ops token, or a caller on this host."""
    redis_settings.ops_token = "ops-secret"
    app = create_app(redis_settings, submit=queue.submit, cancel=queue.cancel)
    r = redis.Redis.from_url(redis_settings.redis_url)
    r.set(WORKER_PREFIX + "gpu-box-1", json.dumps({"pid": 4242, "model_config": "coco"}), ex=30)
    app.extensions["maskweb"].engine = make_engine("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/none")
    client = app.test_client()

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Forwarded-For": "198.51.100.1"}):
        environ = REMOTE if "X-Forwarded-For" not in headers else {}  # a proxy on this host relays it
        response = client.get("/readyz", headers=headers, environ_base=environ)
        assert response.status_code == 503
        assert response.get_json() == {
            "ready": False,
            "checks": {
                "database": {"ok": False},
                "storage": {"ok": True},
                "redis": {"ok": True},
                "workers": {"ok": True, "count": 1},
            },
        }
        text = client.get("/metrics", headers=headers, environ_base=environ).get_data(as_text=True)
        assert "maskweb_uploads_total" in text and "maskweb_http_requests_total" not in text
        assert "gpu-box" not in text and "4242" not in text

    for headers, environ in (({"Authorization": "Bearer ops-secret"}, REMOTE), ({}, {})):  # token, loopback
        checks = client.get("/readyz", headers=headers, environ_base=environ).get_json()["checks"]
        assert checks["workers"]["workers"] == [
            {"hostname": "gpu-box-1", "pid": 4242, "model_config": "coco"}
        ]
        assert "OperationalError" in checks["database"]["error"]
        text = client.get("/metrics", headers=headers, environ_base=environ).get_data(as_text=True)
        assert "maskweb_http_requests_total" in text
    r.close()
