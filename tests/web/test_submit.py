"""``backend.jobs.submit``: an upload hands its jobs to a dispatcher round and is answered without waiting
for it; ``connect`` opens what a round needs before the first upload. Real Redis and SQLite."""

from __future__ import annotations

import threading
import time

from test_positions import _queue

from backend import jobs
from backend.jobs import celery_app, connections, dispatch, events
from backend.storage.db import session_scope
from backend.storage.models import Job


def test_submit_answers_at_once_and_the_round_follows(redis_settings, monkeypatch):
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow_round(settings, positions_stored=None):
        started.set()
        release.wait(30)
        positions_stored()
        finished.set()
        return {}, False

    monkeypatch.setattr(dispatch, "_round", slow_round)
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


def test_a_round_that_handed_out_its_most_is_followed_by_another(redis_settings, monkeypatch):
    _queue(redis_settings, users=dispatch.MAX_PICKS_PER_ROUND + 20, per_user=1)
    real_round, fills, done = dispatch._round, [], threading.Event()

    def recorded(settings, positions_stored=None):
        positions, full = real_round(settings, positions_stored)
        fills.append(full)
        if not full:
            done.set()
        return positions, full

    monkeypatch.setattr(dispatch, "_round", recorded)
    jobs.submit(redis_settings, [])
    assert done.wait(30) and fills == [True, False]  # the second round, unasked, handed out the other 20
    with session_scope(connections.engine(redis_settings)) as db:
        assert db.query(Job).filter(Job.dispatched_at.is_(None)).count() == 0


def test_a_burst_of_uploads_shares_one_round_that_starts_after_it(redis_settings, monkeypatch):
    rounds, done = [], threading.Event()

    def counted(settings, positions_stored=None):
        rounds.append(time.monotonic())
        positions_stored()
        done.set()
        return {}, False

    monkeypatch.setattr(dispatch, "_round", counted)
    submitted = []
    for i in range(10):  # uploads answered a few ms apart, as a burst of simultaneous ones is
        jobs.submit(redis_settings, [f"{i:032d}"])
        submitted.append(time.monotonic())
        time.sleep(dispatch.GATHER_QUIET_S / 4)
    assert done.wait(10)
    time.sleep(dispatch.GATHER_QUIET_S * 5)  # time enough for a second round, were one asked for
    assert len(rounds) == 1 and rounds[0] > submitted[-1]
