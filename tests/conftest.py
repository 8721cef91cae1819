"""Fixtures shared by every test: the parity reference and generated weight files (helpers: testkit.py)."""

from __future__ import annotations

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
