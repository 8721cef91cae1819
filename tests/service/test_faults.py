"""Real faults against the running stack (issue 10, point 2): Redis killed and restarted with and without its
data, the web process restarted under watching clients, the database gone for seconds, a full or read-only
data directory, a worker stopped with SIGTERM mid-job. Every job ends exactly once and nothing is lost."""

from __future__ import annotations

import pytest

from .faults import restart_redis
from .stack import png_bytes

pytestmark = pytest.mark.slow


def _three_jobs_in_every_place(stack, user) -> list[str]:
    """One job running (held before its model stage), one dispatched (its message in the broker), one still
    waiting in the database (the user's in-flight cap is 2)."""
    stack.hold("model")
    ids = [j["id"] for j in user.upload(*(png_bytes(40, 32, seed=s) for s in (11, 12, 13)))]
    user.wait(ids[0], states=("running",), timeout_s=120)
    rows = stack.db_jobs(*ids)
    assert rows[ids[1]]["dispatched_at"] is not None and rows[ids[2]]["dispatched_at"] is None
    return ids


def _each_ran_once(stack, user, ids: list[str]) -> None:
    finals = {job_id: user.wait(job_id, timeout_s=240) for job_id in ids}
    assert {f["state"] for f in finals.values()} == {"done"}, finals
    assert {row["attempts"] for row in stack.db_jobs(*ids).values()} == {1}  # none lost, none run twice


def test_redis_killed_and_restarted_with_its_append_only_file_loses_nothing(stack):
    user = stack.user()
    ids = _three_jobs_in_every_place(stack, user)
    restart_redis(stack, keep_data=True)
    assert stack.redis().exists("maskweb:test:hold:model")  # the last write before the crash survived
    stack.release("model")
    _each_ran_once(stack, user, ids)


def test_redis_restarted_empty_re_enqueues_what_waits_in_the_database(stack):
    """Without persistence the broker's messages, the leases and the holds are gone: the reconciler sends the
    dispatched job again, the running one keeps its worker (its lease is taken back), none runs twice."""
    user = stack.user()
    ids = _three_jobs_in_every_place(stack, user)
    restart_redis(stack, keep_data=False)  # the hold went with the data: the running job goes on
    _each_ran_once(stack, user, ids)
