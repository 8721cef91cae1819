"""The Flask application factory.

``create_app(settings, submit=None, cancel=None)`` builds the whole web process: API, pages, health and
metrics, Socket.IO handlers. ``submit(settings, job_ids)`` and ``cancel(settings, job)`` are how the web
enqueues work; by default they are ``backend.jobs.submit`` / ``backend.jobs.cancel`` (imported on first
use, so the web never imports the worker's model code), and tests inject their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from backend.atomic import make_dirs
from backend.settings import Settings
from backend.storage.db import make_engine, migrate, session_factory
from backend.storage.files import FileStore, open_file_store

log = logging.getLogger(__name__)

Submitter = Callable[[Settings, list[str]], Any]
Canceller = Callable[[Settings, Any], Any]


def _default_submit(settings: Settings, job_ids: list[str]) -> None:
    from backend.jobs import submit

    submit(settings, job_ids)


def _default_cancel(settings: Settings, job) -> None:
    from backend.jobs import cancel

    cancel(settings, job)


@dataclass
class WebServices:
    """What request handlers need, kept on ``app.extensions["maskweb"]``."""

    settings: Settings
    engine: Engine
    files: FileStore
    submit: Submitter
    cancel: Canceller
    metrics: Any = None
    socket_callers: dict[str, Any] = field(default_factory=dict)
    share_subscribers: dict[str, dict[str, str]] = field(default_factory=dict)  # link digest -> {sid: token}

    def enqueue(self, job_ids: list[str]) -> None:
        """Hand new jobs to the queue. A failure (Redis down) is logged: the jobs stay waiting in the
        database, where the dispatcher finds them again."""
        try:
            self.submit(self.settings, job_ids)
        except Exception:
            log.exception("could not submit jobs %s; they stay queued in the database", job_ids)

    def request_cancel(self, job) -> None:
        try:
            self.cancel(self.settings, job)
        except Exception:
            log.exception("could not forward the cancellation of job %s to the queue", job.id)


def services() -> WebServices:
    from flask import current_app

    return current_app.extensions["maskweb"]


def get_db() -> Session:
    """The request's database session (closed, and rolled back if uncommitted, when the request ends)."""
    if "db" not in g:
        g.db = session_factory(services().engine)()
    return g.db


def create_app(
    settings: Settings | None = None,
    submit: Submitter | None = None,
    cancel: Canceller | None = None,
    *,
    run_migrations: bool = True,
) -> Flask:
    """Build the web app for ``settings`` (default ``Settings.from_env()``); migrates the database."""
    from . import api, health, metrics, pages, sockets
    from .decoding import init_decoding
    from .errors import register_error_handlers
    from .headers import init_security_headers
    from .identity import init_identity
    from .limits import init_limiter

    settings = settings or Settings.from_env()
    make_dirs(settings.data_dir)
    if run_migrations:
        migrate(settings.database_url)

    app = Flask(__name__, static_folder=None)
    app.config.update(
        SECRET_KEY=settings.secret_key_value(),
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_SECURE=settings.cookie_secure,
    )
    app.json.sort_keys = False
    app.extensions["maskweb"] = WebServices(
        settings=settings,
        engine=make_engine(settings.database_url),
        files=open_file_store(settings),
        submit=submit or _default_submit,
        cancel=cancel or _default_cancel,
    )

    register_error_handlers(app)
    init_identity(app)
    init_security_headers(app)

    @app.after_request
    def _commit(response):
        db = g.get("db")
        if db is not None and response.status_code < 400:
            db.commit()  # a new anonymous user, a token's last use
        return response

    @app.teardown_request
    def _close_db(_exc):
        db = g.pop("db", None)
        if db is not None:
            db.close()

    app.register_blueprint(api.bp)
    app.register_blueprint(pages.make_blueprint(settings))
    app.register_blueprint(health.bp)
    metrics.init_metrics(app)
    init_limiter(app)
    init_decoding(app)
    sockets.init_socketio(app)
    return app
