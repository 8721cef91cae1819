"""Alembic migrations create the schema on an empty database and agree with the models."""

from __future__ import annotations

import hashlib

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


def test_upgrading_hashes_the_share_tokens_already_stored_and_their_links_keep_working(database_url):
    """0002: a link made before the upgrade still opens its job, and no token is left in the database."""
    from sqlalchemy import text

    from backend.storage import repo
    from backend.storage.db import session_scope

    command.downgrade(alembic_config(database_url), "base")
    migrate(database_url, "0001_initial")
    engine = make_engine(database_url)
    token = "t" * 43
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO users (id, created_at) VALUES (:u, CURRENT_TIMESTAMP)"), {"u": "u" * 32}
            )
            conn.execute(
                text(
                    "INSERT INTO jobs (id, user_id, state, progress, filename, created_at, attempts, "
                    "cancel_requested) VALUES (:j, :u, 'done', 1.0, 'a.png', CURRENT_TIMESTAMP, 1, false)"
                ),
                {"j": "j" * 32, "u": "u" * 32},
            )
            conn.execute(
                text(
                    "INSERT INTO share_links (token, job_id, created_at) VALUES (:t, :j, CURRENT_TIMESTAMP)"
                ),
                {"t": token, "j": "j" * 32},
            )
        migrate(database_url)
        with session_scope(engine) as db:
            assert repo.shared_job(db, token).id == "j" * 32
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT token_sha256 FROM share_links")).scalars().all()
        assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    finally:
        engine.dispose()
