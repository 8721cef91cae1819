"""Queue positions stay cheap: the dispatcher computes the fair order once per round and stores it in Redis;
an upload, a job read, the gallery and a socket subscribe read it for their own jobs (one HMGET) and never the
whole queue. A round publishes only the positions that are news. Real Redis, real database, the real
dispatcher (its Celery messages go to the private Redis; no worker takes them)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import socketio as socketio_client
from webtools import Visitor, png
from werkzeug.serving import make_server

from backend import jobs
from backend.jobs import connections, dispatch
from backend.storage import queue_order
from backend.storage.db import migrate, session_scope
from backend.storage.models import DONE, QUEUED, RUNNING, Job, User, utcnow
from backend.web import create_app


@pytest.fixture
def dispatching_app(redis_settings):
    # the app's submit answers without waiting for the round; these tests read the positions in the answer
    app = create_app(
        redis_settings, submit=lambda s, ids: jobs.submit(s, ids, wait_s=30), cancel=lambda *_: None
    )
    yield app


def _forbid_full_reads(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("a request read every active job")

    monkeypatch.setattr(queue_order, "read_queue", refuse)
    monkeypatch.setattr(dispatch, "read_queue", refuse)  # a dispatcher round, had a request started one
    monkeypatch.setattr(queue_order, "queue_positions", refuse)
    monkeypatch.setattr("backend.web.positions.queue_positions", refuse)


def test_requests_read_positions_from_the_dispatchers_round(dispatching_app, redis_settings, monkeypatch):
    alice, bob = Visitor(dispatching_app), Visitor(dispatching_app)
    first = alice.upload(png(), png(), png(), png())
    assert [j["queue_position"] for j in first] == [1, 2, 3, 4]  # two handed to Celery, two waiting
    (late,) = bob.upload(png())
    assert late["queue_position"] == 3  # bob's one image goes before alice's third

    _forbid_full_reads(monkeypatch)
    assert alice.get(f"/api/jobs/{first[3]['id']}").get_json()["queue_position"] == 5
    gallery = alice.get("/api/jobs").get_json()["jobs"]
    assert [j["queue_position"] for j in gallery] == [5, 4, 2, 1]  # newest first
    httpd = make_server("127.0.0.1", 0, dispatching_app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    client = socketio_client.Client(reconnection=False)
    try:
        client.connect(
            f"http://127.0.0.1:{httpd.server_port}",
            headers={"Cookie": f"maskweb_id={bob.client.get_cookie('maskweb_id').value}"},
            transports=["websocket"],
        )
        ack = client.call("subscribe", {"job_id": late["id"]}, timeout=30)
        assert ack["ok"] and ack["job"]["queue_position"] == 3
    finally:
        client.disconnect()
        httpd.shutdown()


def _queue(settings, users: int, per_user: int) -> list[str]:
    """``users`` x ``per_user`` waiting jobs, straight into the database."""
    migrate(settings.database_url)
    engine = connections.engine(settings)
    now = utcnow()
    ids = []
    with session_scope(engine) as db:
        for _ in range(users):
            user = User()
            db.add(user)
            db.flush()
            for i in range(per_user):
                job = Job(
                    user_id=user.id, state=QUEUED, stage="waiting", created_at=now + timedelta(seconds=i)
                )
                db.add(job)
                ids.append(job)
        db.flush()
        ids = [j.id for j in ids]
    return ids


def test_a_round_publishes_only_positions_that_are_news(redis_settings, monkeypatch):
    redis_settings.max_inflight_per_user = 1
    _queue(redis_settings, users=50, per_user=10)  # 500 waiting jobs
    published = []
    monkeypatch.setattr(dispatch, "publish_job", lambda _s, job, position=None: published.append(position))

    positions = dispatch.pump(redis_settings)
    assert len(positions) == 500 and len(published) == 500  # every job hears its first position

    # the queue advances by a few jobs: every position behind them changes, but only news is published
    published.clear()
    engine = connections.engine(redis_settings)
    with session_scope(engine) as db:
        started = [job_id for job_id, p in sorted(positions.items(), key=lambda kv: kv[1])[:5]]
        for job in db.query(Job).filter(Job.id.in_(started)):
            job.state, job.stage, job.finished_at = DONE, None, utcnow()
    after = dispatch.pump(redis_settings)
    moved = sum(1 for job_id, p in after.items() if positions.get(job_id) != p)
    assert moved > 300, moved  # most of the 450 (how many depends on the random ids breaking ties)
    assert len(published) <= dispatch.EXACT_POSITIONS + 60, len(published)
    assert dispatch.stored_positions(redis_settings, list(after)) == after  # readers see every position


def test_a_round_hands_out_a_bounded_number_of_jobs(redis_settings):
    _queue(redis_settings, users=dispatch.MAX_PICKS_PER_ROUND + 20, per_user=1)
    dispatch.pump(redis_settings)
    engine = connections.engine(redis_settings)
    with session_scope(engine) as db:
        handed = db.query(Job).filter(Job.dispatched_at.is_not(None)).count()
    assert handed == dispatch.MAX_PICKS_PER_ROUND
    dispatch.pump(redis_settings)  # the next round hands out the rest
    with session_scope(engine) as db:
        assert db.query(Job).filter(Job.dispatched_at.is_(None), Job.state != RUNNING).count() == 0


@pytest.mark.parametrize(
    ("new", "published", "news"),
    [
        (7, None, True),  # never told
        (7, 7, False),
        (99, 100, True),  # near the front: every change
        (900, 950, False),  # far back: a 5% move waits
        (850, 950, True),  # a 10% move is news
    ],
)
def test_which_moves_are_news(new, published, news):
    assert dispatch.worth_publishing(new, published) is news


def test_a_job_is_announced_as_queued_before_a_worker_can_take_it(redis_settings, monkeypatch):
    """A worker starts a job as soon as its message exists; had the round's queued event gone out after the
    message, the worker's "running" could reach the page first and the queued one be dropped as stale."""
    redis_settings.max_inflight_per_user = 1
    _queue(redis_settings, users=3, per_user=2)
    calls = []
    publish, send = dispatch.publish_job, dispatch._send

    def spy_publish(settings, job, position=None):
        calls.append(("event", job.id))
        publish(settings, job, position)

    def spy_send(settings, picked):
        calls.extend(("message", job_id) for job_id, _ in picked)
        send(settings, picked)

    monkeypatch.setattr(dispatch, "publish_job", spy_publish)
    monkeypatch.setattr(dispatch, "_send", spy_send)

    dispatch.pump(redis_settings)
    messages = [job_id for kind, job_id in calls if kind == "message"]
    assert len(messages) == 3  # one per user
    for job_id in messages:
        assert calls.index(("event", job_id)) < calls.index(("message", job_id))
