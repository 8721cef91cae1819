"""Rate limits (Flask-Limiter): uploads and token creation are limited per caller (each separately) to
``settings.upload_rate_limit``.

The caller is its user id (cookie or bearer token) when it has one, else its address. Counters live in
Redis when ``REDIS_URL`` is set (shared by every web process), else in memory. A refusal is a JSON 429.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter

from .errors import ApiError

UPLOAD_ENDPOINT = "api.create_jobs"
TOKEN_ENDPOINT = "api.create_token"  # creates identities for callers without one: limited like uploads


def caller_key() -> str:
    from .app import get_db
    from .identity import resolve_caller

    try:
        user_id = resolve_caller(get_db()).user_id
    except ApiError:
        user_id = None
    return f"user:{user_id}" if user_id else f"addr:{request.remote_addr}"


def init_limiter(app: Flask) -> Limiter:
    settings = app.extensions["maskweb"].settings
    limiter = Limiter(
        key_func=caller_key,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        storage_options={"socket_connect_timeout": 2} if settings.redis_url else {},
        key_prefix="maskweb-limits",
        default_limits=[],
        headers_enabled=True,
        swallow_errors=True,  # a Redis outage must not take uploads down with it
    )
    for endpoint in (UPLOAD_ENDPOINT, TOKEN_ENDPOINT):
        view = app.view_functions[endpoint]
        app.view_functions[endpoint] = limiter.limit(settings.upload_rate_limit, scope=endpoint)(view)
    app.extensions["maskweb_limiter"] = limiter
    return limiter
