"""Starting never deletes; ``maskweb gc`` removes orphaned upload files only when asked, and refuses when the
database looks new (issue 10, point 4)."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from backend.cli import main
from backend.storage.db import make_engine, migrate, session_scope
from backend.storage.files import LocalFileStore
from backend.storage.models import Job, User, new_id

LONG_AGO = 1_000_000_000


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A data directory and a database URL in the environment, as an operator would run ``maskweb gc``."""
    monkeypatch.setenv("MASKWEB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'maskweb.db'}")
    monkeypatch.delenv("MASKWEB_STORAGE_URL", raising=False)
    return LocalFileStore(tmp_path / "data")


def _files(store: LocalFileStore, old: bool = True) -> str:
    job_id = new_id()
    store.save_original(job_id, Image.new("RGB", (4, 4)))
    if old:
        os.utime(store.job_dir(job_id), (LONG_AGO, LONG_AGO))
    return job_id


def _row(job_id: str) -> None:
    engine = make_engine(os.environ["DATABASE_URL"])
    try:
        with session_scope(engine) as db:
            user = User()
            db.add(user)
            db.flush()
            db.add(Job(id=job_id, user_id=user.id, filename="kept.png"))
    finally:
        engine.dispose()


def test_creating_the_app_on_stored_files_with_a_new_database_deletes_nothing(data, tmp_path):
    from backend.settings import Settings
    from backend.web import create_app

    stored = _files(data)
    settings = Settings(
        data_dir=tmp_path / "data", secret_key="s", database_url=f"sqlite:///{tmp_path / 'new.db'}"
    )
    app = create_app(settings, submit=lambda *_: None, cancel=lambda *_: None)
    app.extensions["maskweb"].engine.dispose()
    assert sorted(data.job_ages()) == [stored]


def test_gc_lists_with_dry_run_then_removes_only_old_orphans(data, capsys):
    migrate(os.environ["DATABASE_URL"])
    kept, orphan, young = _files(data), _files(data), _files(data, old=False)
    _row(kept)

    assert main(["gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would remove {orphan}" in out and kept not in out and young not in out
    assert sorted(data.job_ages()) == sorted([kept, orphan, young])

    assert main(["gc"]) == 0
    assert f"removed {orphan}" in capsys.readouterr().out
    assert sorted(data.job_ages()) == sorted([kept, young])


@pytest.mark.parametrize("schema", [True, False], ids=["empty-database", "no-schema"])
def test_gc_refuses_when_the_database_looks_new_while_job_files_exist(data, capsys, schema):
    if schema:
        migrate(os.environ["DATABASE_URL"])
    stored = [_files(data), _files(data)]
    assert main(["gc"]) == 3
    err = capsys.readouterr().err
    assert "refusing" in err and "DATABASE_URL" in err and "Nothing removed" in err
    assert sorted(data.job_ages()) == sorted(stored)
