"""What the app factory and every blueprint share, in one module (as flaskr's ``db.py``): the app's
``WebServices`` (settings, database engine, file store, the queue's submit and cancel) and the request's
database session.

- ``init_services(app, services)`` keeps ``services`` on the app and closes each request's session
  (committing it first when the response succeeded);
- ``services()`` / ``app_services(app)``: the ``WebServices`` of the current app / of ``app``;
- ``get_db()``: the request's SQLAlchemy session, opened on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from backend.settings import Settings
from backend.storage.db import session_factory
from backend.storage.files import FileStore

log = logging.getLogger(__name__)

Submitter = Callable[[Settings, list[str]], Any]
Canceller = Callable[[Settings, Any], Any]


@dataclass
class WebServices:
    """What request handlers need, kept on ``app.extensions["maskweb"]``.

    ``submit(settings, job_ids)`` and ``cancel(settings, job)`` are how the web enqueues work: the job queue's
    ``backend.jobs.submit`` / ``cancel`` in the app, the test's own where a test injects them.
    """

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


EXTENSION = "maskweb"  # the key of WebServices in app.extensions


def services() -> WebServices:
    """The current app's ``WebServices`` (inside a request or an app context)."""
    return current_app.extensions[EXTENSION]


def app_services(app: Flask) -> WebServices:
    """``app``'s ``WebServices`` (while the app is being built)."""
    return app.extensions[EXTENSION]


def get_db() -> Session:
    """The request's database session (closed, and rolled back if uncommitted, when the request ends)."""
    if "db" not in g:
        g.db = session_factory(services().engine)()
    return g.db


def init_services(app: Flask, web_services: WebServices) -> None:
    """Keep ``web_services`` on ``app``; commit (on success) and close each request's database session."""
    app.extensions[EXTENSION] = web_services

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
