"""A worker's dispatcher round after a job runs on its maintenance thread (``leases.Heartbeat``), not in the
job's thread: asking returns at once, and the asks that arrive while a round runs get one round after it. The
reaper keeps its own interval. Unit tests of ``backend.jobs.leases``: the round and the reaper are recorders,
the lease keeper runs against the private Redis."""

from __future__ import annotations

import threading

import pytest

from backend.jobs import leases
from backend.settings import Settings


class _Recorder:
    """Stands in for ``pump`` (or ``reap``): records the calling thread's name; ``hold`` makes the next call
    wait until ``release``."""

    def __init__(self):
        self.threads: list[str] = []
        self.called = threading.Condition()
        self._held = threading.Event()
        self._held.set()
        self.inside = threading.Event()

    def __call__(self, settings):
        with self.called:
            self.threads.append(threading.current_thread().name)
            self.called.notify_all()
        self.inside.set()
        self._held.wait(30)

    def hold(self):
        self._held.clear()
        self.inside.clear()

    def release(self):
        self._held.set()

    def wait_calls(self, count: int, timeout_s: float = 30) -> bool:
        with self.called:
            return self.called.wait_for(lambda: len(self.threads) >= count, timeout_s)


@pytest.fixture
def maintenance(tmp_path, private_redis, monkeypatch):
    pump, reap = _Recorder(), _Recorder()
    monkeypatch.setattr(leases, "pump", pump)
    monkeypatch.setattr(leases, "reap", reap)
    heartbeat = leases.Heartbeat(Settings(data_dir=tmp_path, redis_url=private_redis.url), "test-host")
    heartbeat.start()
    assert pump.wait_calls(1)  # the start: a reaper round and a dispatcher round
    yield heartbeat, pump, reap
    pump.release()
    heartbeat.stop()
    heartbeat.join(30)


def test_a_round_asked_for_after_a_job_runs_on_the_maintenance_thread(maintenance):
    heartbeat, pump, reap = maintenance
    pump.hold()
    heartbeat.request_round()  # returns at once although the round it starts cannot finish
    assert pump.wait_calls(2)
    assert pump.inside.wait(30)
    assert pump.threads[-1] == "maskweb-maintenance"
    assert reap.threads == ["maskweb-maintenance"]  # the reaper keeps its interval: not once per job


def test_asks_during_a_round_get_one_round_after_it(maintenance):
    heartbeat, pump, _ = maintenance
    pump.hold()
    heartbeat.request_round()
    assert pump.inside.wait(30)
    for _ in range(3):  # three jobs finish while that round runs
        heartbeat.request_round()
    pump.release()
    assert pump.wait_calls(3)
    assert not pump.wait_calls(4, timeout_s=1.0)  # one round for the three asks, then quiet
    assert len(pump.threads) == 3
