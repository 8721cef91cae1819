"""``backend.jobs.submit``: an upload hands its jobs to a dispatcher round and is answered without waiting
for it; ``connect`` opens what a round needs before the first upload. Real Redis and SQLite."""

from __future__ import annotations

import threading

from backend import jobs
from backend.jobs import celery_app, dispatch, events


def test_submit_answers_at_once_and_the_round_follows(redis_settings, monkeypatch):
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow_round(settings, positions_stored=None):
        started.set()
        release.wait(30)
        positions_stored()
        finished.set()
        return {}

    monkeypatch.setattr(dispatch, "pump", slow_round)
    assert jobs.submit(redis_settings, ["a" * 32]) is False  # answered while the round is still running
    assert started.wait(10) and not finished.is_set()
    release.set()
    assert finished.wait(10)
    assert jobs.submit(redis_settings, ["b" * 32], wait_s=10) is True  # a caller may still wait for it


def test_connect_makes_the_rounds_connections_ahead(redis_settings):
    jobs.connect(redis_settings)
    key = (redis_settings.redis_url, redis_settings.job_time_limit)
    assert key in celery_app._apps and redis_settings.redis_url in events._emitters
    assert celery_app.celery_for(redis_settings) is celery_app._apps[key]  # the first round reuses it
