"""Engines, sessions and migrations.

- ``make_engine(url)``: an Engine for SQLite (foreign keys on, WAL, lock waits of up to 30 s that let other
  greenlets run: ``sqlite_wait``; usable from threads) or
  PostgreSQL (``postgresql+psycopg://...``; pre-ping so a restarted server is survived).
- ``session_scope(engine)``: ``with session_scope(engine) as session:`` commits on success, rolls back on error.
- ``migrate(url)``: Alembic ``upgrade head`` with the migrations shipped inside this package; safe to call from
  several processes at once (a PostgreSQL advisory lock, or a file lock beside the SQLite file).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from backend.atomic import make_dirs

from .sqlite_wait import CooperativeConnection

PACKAGE_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = PACKAGE_DIR / "alembic.ini"
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def make_engine(url: str, **kwargs) -> Engine:
    """An Engine for ``url``. For a SQLite file the parent directory is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if path is not None:
            make_dirs(path.parent)
        # timeout 0: SQLite's own busy handler would sleep in C, stopping every greenlet of the process while
        # another connection holds the write lock; CooperativeConnection waits (up to 30 s) in Python instead.
        connect_args = {"check_same_thread": False, "timeout": 0, "factory": CooperativeConnection}
        connect_args.update(kwargs.pop("connect_args", {}))
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if path is not None:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


@cache
def _sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """The (cached) sessionmaker for ``engine``; objects stay readable after commit."""
    return _sessionmaker(engine)


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back (and re-raises) on an exception."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str):
    """The Alembic Config of the shipped migrations, aimed at ``url`` (passed as an attribute, not through
    ini interpolation, so passwords with ``%`` survive)."""
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["database_url"] = url
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (default: the newest). Idempotent."""
    path = _sqlite_path(url)
    if path is None:
        command.upgrade(alembic_config(url), revision)
        return
    make_dirs(path.parent)
    with open(path.with_name(path.name + ".migrate.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(url), revision)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
