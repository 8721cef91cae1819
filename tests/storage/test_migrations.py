"""Alembic migrations create the schema on an empty database and agree with the models."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from backend.storage.db import alembic_config, make_engine, migrate
from backend.storage.models import Base

TABLES = {"users", "api_tokens", "jobs", "share_links", "alembic_version"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_on_an_empty_database_creates_the_schema(database_url):
    command.downgrade(alembic_config(database_url), "base")
    assert _tables(database_url) <= {"alembic_version"}
    migrate(database_url)
    assert _tables(database_url) == TABLES
    migrate(database_url)  # idempotent
    assert _tables(database_url) == TABLES


def test_fresh_sqlite_file_is_created_and_migrated(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'maskweb.db'}"
    migrate(url)
    assert _tables(url) == TABLES


def test_migrations_match_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
