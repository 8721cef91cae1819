"""Fixtures of the service tests: one running stack per database, shared by the tests of the session.

``stack`` (SQLite) and ``pg_stack`` (PostgreSQL; skipped locally, failed in CI, when there is no server) run
the real web server, worker and a private Redis; see ``stack.py``. Tests must leave no job running and no hold
set (``idle_after`` restarts what a test left stopped, releases holds and waits for the queue to drain after each
test; a stack that does not drain is not used again).
"""

from __future__ import annotations

import pytest
from testkit import require_service

from .stack import Stack, drop_postgres, postgres_url, write_model_config


@pytest.fixture(scope="session")
def small_model_config(parity_dir, tmp_path_factory):
    return write_model_config(parity_dir, tmp_path_factory.mktemp("model") / "small.json")


@pytest.fixture(scope="session")
def stack(tmp_path_factory, small_weights, small_model_config):
    with Stack.start(tmp_path_factory.mktemp("stack"), small_weights, small_model_config) as running:
        yield running


@pytest.fixture(scope="session")
def new_postgres_database():
    """``make()`` creates a fresh database on the local PostgreSQL server and returns its URL (skipped locally,
    failed in CI, when there is no server); every one made is dropped at the end of the session."""
    made = []

    def make() -> str:
        url = postgres_url()
        if url is None:
            require_service("PostgreSQL on 127.0.0.1:5432")
        made.append(url)
        return url

    yield make
    for url in made:
        drop_postgres(url)


@pytest.fixture(scope="session")
def pg_stack(tmp_path_factory, small_weights, small_model_config, new_postgres_database):
    with Stack.start(
        tmp_path_factory.mktemp("pgstack"),
        small_weights,
        small_model_config,
        database_url=new_postgres_database(),
    ) as running:
        yield running


SHARED_STACKS = ("stack", "pg_stack")
# shared stack fixture -> the test after which it could not be made idle, and why
_broken: dict[str, str] = {}


@pytest.fixture(autouse=True)
def idle_after(request):
    """After each test: bring back any piece of a shared stack the test left stopped (``Stack.repair``), release
    every hold and let the queue drain, so the next test starts with an idle worker even when this one failed
    half-way. A stack that cannot be made idle is not used again: the tests that need it fail at once, naming
    the test it broke in, instead of each waiting out its own timeouts (a broken shared stack once made the
    rest of a CI run hit its 90-minute limit before the report of the first failure was printed)."""
    names = [name for name in SHARED_STACKS if name in request.fixturenames]
    for name in names:
        if name in _broken:
            pytest.fail(f"the shared {name} was broken after an earlier test: {_broken[name]}")
    yield
    for name in names:
        running = request.getfixturevalue(name)
        try:
            running.repair()
            for key in running.redis().scan_iter(match="maskweb:test:hold:*"):
                running.redis().delete(key)
            running.wait_idle()
        except Exception as exc:
            _broken[name] = f"{request.node.nodeid}: {exc!r}"
            raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the tails of the stack's web and worker logs to the report."""
    report = yield
    if report.failed:
        for name in ("stack", "pg_stack"):
            running = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if running is not None:
                for log in ("worker.log", "web.log"):
                    path = running.logs / log
                    if path.exists():
                        tail = path.read_text(errors="replace").splitlines()[-60:]
                        report.sections.append((f"{name} {log} (last lines)", "\n".join(tail)))
    return report
