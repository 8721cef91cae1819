"""``maskweb worker`` with test holds: before a job enters a stage, wait while ``maskweb:test:hold:<stage>``
exists in Redis; just after it entered one (announced, nothing of the stage done yet), wait while
``maskweb:test:hold:in:<stage>`` exists (see ``stack.hold``). With ``MASKWEB_TEST_WORKER_NAME`` set, each job entering the model stage
is recorded in Redis hash ``maskweb:test:ran`` (job id -> that name; see ``cluster.py``). Everything else is
the production worker."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis  # noqa: E402

from backend.cli import main  # noqa: E402
from backend.jobs import lifecycle  # noqa: E402
from backend.jobs.connections import redis_client  # noqa: E402

HOLD_PREFIX = "maskweb:test:hold:"
HOLD_LIMIT_S = 300
RAN_KEY = "maskweb:test:ran"
WORKER_NAME = os.environ.get("MASKWEB_TEST_WORKER_NAME")

_enter_stage = lifecycle.JobRun.enter_stage


def _held(settings, stage: str) -> bool:
    """Whether the hold is set; while Redis is down (a fault test restarts it) the hold counts as set."""
    try:
        return bool(redis_client(settings).exists(HOLD_PREFIX + stage))
    except redis.ConnectionError:
        return True


def _wait_while_held(settings, name: str) -> None:
    deadline = time.monotonic() + HOLD_LIMIT_S
    while _held(settings, name) and time.monotonic() < deadline:
        time.sleep(0.05)


def enter_stage_with_hold(self, stage: str) -> None:
    _wait_while_held(self.settings, stage)
    if WORKER_NAME and stage == "model":
        redis_client(self.settings).hset(RAN_KEY, self.job_id, WORKER_NAME)
    _enter_stage(self, stage)
    _wait_while_held(self.settings, "in:" + stage)


lifecycle.JobRun.enter_stage = enter_stage_with_hold

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))
