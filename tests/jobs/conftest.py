"""Fixtures of the queue's tests: settings on a fresh SQLite database and the session's private Redis."""

from __future__ import annotations

import pytest
import redis

from backend.settings import Settings
from backend.storage.db import migrate


@pytest.fixture
def settings(tmp_path, private_redis):
    """A fresh SQLite database in ``tmp_path`` and the private Redis, emptied before and after the test (it is
    the session's: counters and keys of earlier tests' rounds would otherwise remain)."""
    url = f"sqlite:///{tmp_path / 'maskweb.db'}"
    migrate(url)
    client = redis.Redis.from_url(private_redis.url)
    client.flushdb()
    yield Settings(data_dir=tmp_path / "data", database_url=url, redis_url=private_redis.url)
    client.flushdb()
    client.close()
