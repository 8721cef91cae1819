"""The Celery configuration that makes a dead worker's job come back (no broker needed to build it)."""

from __future__ import annotations

import subprocess
import sys

from backend.jobs.celery_app import QUEUE, TASK_NAME, broker_transport_options, make_celery
from backend.jobs.leases import LEASE_TTL_S, REAP_INTERVAL_S
from backend.settings import Settings


def test_late_acks_prefetch_one_and_a_visibility_timeout_longer_than_any_job(tmp_path):
    settings = Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0", job_time_limit=900)
    conf = make_celery(settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.task_routes[TASK_NAME]["queue"] == QUEUE == conf.task_default_queue == "inference"
    assert conf.task_soft_time_limit == 900 < conf.task_time_limit
    options = conf.broker_transport_options
    assert options == broker_transport_options(settings)
    assert options["visibility_timeout"] > conf.task_time_limit  # a running job's message is never restored
    # kombu sweeps every interval * throttle seconds: well inside a minute
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 30
    # the fast path for a dead worker: lease expiry plus one reaper round, about a minute at most
    assert LEASE_TTL_S + REAP_INTERVAL_S <= 60


def test_the_web_side_of_the_queue_imports_no_model_code():
    code = (
        "import sys, backend.jobs, backend.jobs.dispatch, backend.jobs.events, backend.jobs.metrics, "
        "backend.jobs.celery_app, backend.cli.run; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'backend.segmentation.pipeline', 'backend.jobs.tasks') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
