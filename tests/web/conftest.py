"""Web fixtures: an app on a temp data dir and a database (SQLite and PostgreSQL), with the queue replaced by a
recorder (the real queue is tested in tests/service), and helpers that act like a browser or a script."""

from __future__ import annotations

import databases
import pytest
from webtools import QueueRecorder, Script, Visitor

from backend.settings import Settings
from backend.web import create_app

# the database fixtures (SQLite and PostgreSQL), shared with tests/storage
postgres_url, database_url, engine = databases.postgres_url, databases.database_url, databases.engine


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        weights=tmp_path / "no-weights.h5",
        secret_key="test-secret-key",
        frontend_dir=tmp_path / "frontend",
        upload_rate_limit="1000 per minute",
        address_upload_rate_limit="1000 per minute",
        identity_rate_limit="1000 per minute",
        min_free_disk_mb=0,
    )


@pytest.fixture
def queue() -> QueueRecorder:
    return QueueRecorder()


@pytest.fixture
def app(settings, queue):
    app = create_app(settings, submit=queue.submit, cancel=queue.cancel)
    yield app
    app.extensions["maskweb"].engine.dispose()


@pytest.fixture
def visitor(app) -> Visitor:
    return Visitor(app)


@pytest.fixture
def other_visitor(app) -> Visitor:
    return Visitor(app)


@pytest.fixture
def script(app) -> Script:
    return Script(app)


@pytest.fixture
def redis_settings(settings, private_redis):
    settings.redis_url = private_redis.url
    yield settings
    import redis

    client = redis.Redis.from_url(private_redis.url)
    client.flushdb()
    client.close()
