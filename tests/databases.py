"""Database fixtures for storage and web tests: every test runs on SQLite AND PostgreSQL.

PostgreSQL: one uniquely named database per test session (``CREATE DATABASE maskweb_t_<random>``, dropped at
the end), so parallel runs never collide; tables are emptied after each test. The server comes from
``MASKWEB_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``); when it is not
reachable the PostgreSQL half is skipped locally and fails in CI (``require_service``).

Imported by ``tests/storage/conftest.py`` and ``tests/web/conftest.py``.
"""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from testkit import require_service

from backend.storage.db import make_engine, migrate
from backend.storage.models import Base

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a fresh, migrated PostgreSQL database for this test session."""
    admin_url = make_url(os.environ.get("MASKWEB_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    name = f"maskweb_t_{secrets.token_hex(6)}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure here means "no PostgreSQL"
        require_service(
            f"PostgreSQL not reachable at {admin_url.render_as_string(hide_password=True)}: {exc}"
        )
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_tables(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A migrated, empty database: a SQLite file in tmp_path, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'maskweb.db'}"
        migrate(url)
        yield url
        return
    url = request.getfixturevalue("postgres_url")
    try:
        yield url
    finally:
        empty_tables(url)


@pytest.fixture
def engine(database_url):
    eng = make_engine(database_url)
    yield eng
    eng.dispose()
