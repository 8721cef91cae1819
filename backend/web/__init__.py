"""The web process: Flask app (``create_app``), API, pages, Socket.IO (``socketio``), health and metrics.

Never imports TensorFlow, the model engine, or the worker's task module: it starts in a second.

``create_app`` and ``socketio`` are loaded on first use, so that gunicorn's master process, which imports
``backend.web.access_log`` for its logger, loads nothing else of the app: the app (Flask, SQLAlchemy, redis,
psycopg) must be imported only in the worker, after gevent has patched the standard library.
"""

from __future__ import annotations

__all__ = ["create_app", "socketio"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "socketio":
        from .sockets import socketio

        return socketio
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
