"""The dispatcher lock: a round keeps it however long it runs, and a holder killed mid-round stops dispatch for
one short lock life, not for minutes. Real Redis and database, the real round (the first test shortens the
lock's life so that it can outlast several)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from backend.jobs import dispatch

LIFE_S = 1.0


@pytest.fixture
def stores(settings):
    """The queue's settings (``conftest.settings``) and a client of their Redis."""
    client = redis.Redis.from_url(settings.redis_url)
    yield settings, client
    client.close()


@pytest.fixture
def short_lock(stores, monkeypatch):
    monkeypatch.setattr(dispatch, "LOCK_TIMEOUT_S", LIFE_S)
    monkeypatch.setattr(dispatch, "LOCK_RENEW_S", LIFE_S / 5)
    return stores


def test_a_round_longer_than_the_locks_life_keeps_it_to_the_end(short_lock, monkeypatch):
    settings, client = short_lock
    handing_out, finish = threading.Event(), threading.Event()
    real_hand_out = dispatch._hand_out

    def slow_hand_out(s):
        handing_out.set()
        finish.wait(30)
        return real_hand_out(s)

    monkeypatch.setattr(dispatch, "_hand_out", slow_hand_out)
    round_thread = threading.Thread(target=dispatch.pump, args=(settings,))
    round_thread.start()
    try:
        assert handing_out.wait(30)
        holder = client.get(dispatch.LOCK_KEY)
        deadline = time.monotonic() + 3 * LIFE_S
        while time.monotonic() < deadline:  # three lives: without renewal it expires after the first
            assert client.get(dispatch.LOCK_KEY) == holder, "the running round lost the dispatcher lock"
            assert client.pttl(dispatch.LOCK_KEY) > 0
            time.sleep(0.05)
    finally:
        finish.set()
        round_thread.join(30)
    assert not round_thread.is_alive()
    assert client.get(dispatch.LOCK_KEY) is None  # released at the end of the round


HOLDER = """
import sys, threading
from backend.jobs import dispatch
from backend.settings import Settings

def hand_out_never(settings):
    print("holding", flush=True)
    threading.Event().wait()

dispatch._hand_out = hand_out_never
dispatch.pump(Settings(data_dir=sys.argv[1], database_url=sys.argv[2], redis_url=sys.argv[3]))
"""


def test_a_holder_killed_mid_round_stops_dispatch_for_one_lock_life_only(stores):
    """A process killed with SIGKILL in the middle of its round (the real lock life, nothing shortened)."""
    settings, client = stores
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.data_dir), settings.database_url, settings.redis_url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert client.exists(dispatch.LOCK_KEY)
        holder.kill()
        holder.wait(30)
        started = time.monotonic()
        assert dispatch.pump(settings) == {}  # waits for the dead holder's lock to expire, then runs
        waited = time.monotonic() - started
        assert waited <= dispatch.LOCK_TIMEOUT_S + 1, waited
    finally:
        holder.kill()
        holder.wait(30)
