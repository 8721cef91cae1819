"""The Flask application factory.

``create_app(settings, submit=None, cancel=None)`` builds the whole web process: API, pages, health and
metrics, Socket.IO handlers. ``submit(settings, job_ids)`` and ``cancel(settings, job)`` are how the web
enqueues work; by default they are ``backend.jobs.submit`` / ``backend.jobs.cancel`` (the package is cheap to
import: no Celery, Redis or model code until they are called), and tests inject their own. What the
blueprints share with this factory lives in ``services``.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from backend import jobs
from backend.atomic import make_dirs
from backend.settings import Settings
from backend.storage.db import make_engine, migrate
from backend.storage.files import open_file_store

from . import api, health, metrics, pages, sockets
from .activity import RequestActivity
from .decoding import init_decoding
from .errors import register_error_handlers
from .headers import init_security_headers
from .identity import caller_key, init_identity
from .limits import init_limiter
from .preparing import init_preparing
from .services import Canceller, Submitter, WebServices, init_services

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    submit: Submitter | None = None,
    cancel: Canceller | None = None,
    *,
    run_migrations: bool = True,
) -> Flask:
    """Build the web app for ``settings`` (default ``Settings.from_env()``); migrates the database."""
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
    init_services(
        app,
        WebServices(
            settings=settings,
            engine=make_engine(settings.database_url),
            files=open_file_store(settings),
            submit=submit or jobs.submit,
            cancel=cancel or jobs.cancel,
        ),
    )

    register_error_handlers(app)
    init_identity(app)
    init_security_headers(app)

    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    metrics.init_metrics(app)
    init_limiter(app, caller_key)
    activity = app.wsgi_app = RequestActivity(app.wsgi_app)
    init_preparing(app, init_decoding(app), activity)
    sockets.init_socketio(app)
    if submit is None and settings.redis_url:
        threading.Thread(target=_connect_queue, args=(settings,), name="connect-queue", daemon=True).start()
    return app


def _connect_queue(settings: Settings) -> None:
    """The job queue's connections, made before the first upload needs them (``backend.jobs.connect``)."""
    try:
        jobs.connect(settings)
    except Exception:
        log.warning("could not connect to the job queue yet; the first upload will", exc_info=True)
