"""Fixtures shared by every test: the parity reference and generated weight files (helpers: testkit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import PARITY_DIR, generate_weights, require_service


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
