"""A round publishes at most ``MAX_NEWS_PER_ROUND`` queue positions, the front first, and says it did its most so
the rest follow in the next rounds: a storm of news (Redis lost what was published, a mass cancel at the front)
no longer holds the dispatcher lock for seconds. Real Redis (positions, events' channel) and SQLite."""

from __future__ import annotations

import time

import redis

from backend.jobs import dispatch
from backend.storage.db import make_engine, session_scope
from backend.storage.models import QUEUED, Job, User

JOBS = 10


def _queue(settings) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as db:
        users = [User() for _ in range(JOBS)]
        db.add_all(users)
        db.flush()
        db.add_all([Job(user_id=user.id, state=QUEUED) for user in users])
    engine.dispose()


def _events(channel) -> int:
    """How many Socket.IO emits reached the message queue's channel since the last call."""
    count, quiet_until = 0, time.monotonic() + 0.5
    while time.monotonic() < quiet_until:  # None also stands for a skipped subscribe confirmation: read on
        message = channel.get_message(timeout=0.1)
        if message is not None and message["type"] == "message":
            count, quiet_until = count + 1, time.monotonic() + 0.5
    return count


def test_a_round_publishes_at_most_its_share_of_news_front_first_and_asks_for_more(settings, monkeypatch):
    monkeypatch.setattr(dispatch, "MAX_NEWS_PER_ROUND", 4)
    monkeypatch.setattr(dispatch, "MAX_PICKS_PER_ROUND", JOBS)  # all handed out at once: "full" is the news'
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    channel = client.pubsub(ignore_subscribe_messages=True)
    channel.subscribe("flask-socketio")  # Flask-SocketIO's message queue: what the web forwards to the pages
    _queue(settings)
    published = []
    for _ in range(3):
        positions, full = dispatch._round(settings, None)
        told = client.hgetall(dispatch.PUBLISHED_KEY)
        published.append((sorted(int(p) for p in told.values()), _events(channel), full))
    # every position is news once: the front 4, then the next 4 (more to do each time), then the last 2
    assert published[0] == ([1, 2, 3, 4], 4, True)
    assert published[1] == ([1, 2, 3, 4, 5, 6, 7, 8], 4, True)
    assert published[2][0] == list(range(1, JOBS + 1)) and published[2][1:] == (2, False)
    assert sorted(positions.values()) == list(range(1, JOBS + 1))
    channel.close()


def test_a_web_processs_rounds_go_on_until_every_position_is_told(settings, monkeypatch):
    monkeypatch.setattr(dispatch, "MAX_NEWS_PER_ROUND", 3)
    client = redis.Redis.from_url(settings.redis_url)
    _queue(settings)
    coalescer = dispatch.Coalescer(settings)
    assert coalescer.pump_and_wait(30)  # one request, as one upload makes
    deadline = time.monotonic() + 30
    while client.hlen(dispatch.PUBLISHED_KEY) < JOBS:  # the rounds it asked for itself
        assert time.monotonic() < deadline, client.hlen(dispatch.PUBLISHED_KEY)
        time.sleep(0.05)
    assert int(client.get(dispatch.STARTED_KEY)) >= 4  # 3 + 3 + 3 + 1
