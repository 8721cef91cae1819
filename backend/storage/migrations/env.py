"""Alembic environment: the URL comes from ``config.attributes["database_url"]`` (set by
``backend.storage.db.alembic_config``) or ``sqlalchemy.url`` in the ini. On PostgreSQL an advisory lock
serialises concurrent ``migrate()`` calls from several processes starting at once."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from backend.storage.db import make_engine
from backend.storage.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK_ID = 0x6D61736B  # "mask"


def database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: call backend.storage.db.migrate(url)")
    return url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
                connection.commit()
            try:
                context.configure(connection=connection, target_metadata=target_metadata)
                with context.begin_transaction():
                    context.run_migrations()
            finally:
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                    connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
