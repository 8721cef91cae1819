"""Rate limits a caller cannot dodge by minting identities (Flask-Limiter; counters in Redis when ``REDIS_URL``
is set, so every web process shares them, else in memory).

| ``limit`` in the 429 body | counted per | setting (default) |
| --- | --- | --- |
| ``new_identities_per_address`` | client address | ``identity_rate_limit`` (20 per minute; 200 per day) |
| ``uploads_per_identity`` | user (cookie or bearer token) | ``upload_rate_limit`` (60 per minute) |
| ``uploads_per_address`` | client address | ``address_upload_rate_limit`` (300 per minute) |
| ``tokens_per_identity`` | user, else address | ``upload_rate_limit`` |

A new identity is minted by any request without credentials that needs one (``GET /api/session``,
``POST /api/tokens``, ``GET /api/jobs``): ``charge_new_identity`` counts it against the address before the
user row exists. The client address is ``request.remote_addr``; behind ``trusted_proxies`` reverse proxies
(``MASKWEB_TRUSTED_PROXIES``) werkzeug's ProxyFix takes it from that many hops of ``X-Forwarded-For``, and a
client cannot forge it by sending its own header (only the trusted hops' entries are believed).

A refusal is a 429 with ``Retry-After`` (seconds) and the error JSON of ``errors.py`` plus ``limit`` (the
name above), ``limit_text`` ("20 per 1 minute"), ``retry_after_s`` and ``retry_at`` (ISO-8601 UTC).
A Redis outage lets requests through (logged): limits must not take uploads down with them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import RateLimitItem, parse_many
from werkzeug.middleware.proxy_fix import ProxyFix

from .errors import ApiError
from .services import app_services

log = logging.getLogger(__name__)

UPLOAD_ENDPOINT = "api.create_jobs"
TOKEN_ENDPOINT = "api.create_token"
NEW_IDENTITIES = "new_identities_per_address"
UPLOADS_PER_IDENTITY = "uploads_per_identity"
UPLOADS_PER_ADDRESS = "uploads_per_address"
TOKENS_PER_IDENTITY = "tokens_per_identity"

_WHAT = {
    NEW_IDENTITIES: "new visitors from your network address",
    UPLOADS_PER_IDENTITY: "uploads by you",
    UPLOADS_PER_ADDRESS: "uploads from your network address",
    TOKENS_PER_IDENTITY: "API tokens created by you",
}


def client_address() -> str:
    """The caller's address (after ProxyFix when proxies are trusted)."""
    return request.remote_addr or "unknown"


def address_key() -> str:
    return f"addr:{client_address()}"


def too_many(name: str, limit_text: str, reset_at: float) -> ApiError:
    """The 429 ApiError for limit ``name`` (``limit_text`` like "20 per 1 minute"), free again at ``reset_at``
    (a UNIX time). The response gets its ``Retry-After`` header from ``retry_after_s``."""
    wait_s = max(1, math.ceil(reset_at - time.time()))
    when = datetime.fromtimestamp(time.time() + wait_s, UTC).replace(microsecond=0)
    return ApiError(
        429,
        "rate_limited",
        f"Too many {_WHAT.get(name, 'requests')}: the limit is {limit_text}. Try again in {wait_s} s.",
        limit=name,
        limit_text=limit_text,
        retry_after_s=wait_s,
        retry_at=when.isoformat().replace("+00:00", "Z"),
    )


def _limiter() -> Limiter:
    return current_app.extensions["maskweb_limiter"]


def charge_new_identity() -> None:
    """Count one new identity against the caller's address; ApiError 429 when over ``identity_rate_limit``."""
    limiter = _limiter()
    items: list[RateLimitItem] = current_app.extensions["maskweb_identity_limits"]
    address = client_address()
    try:
        for item in items:
            if not limiter.limiter.hit(item, NEW_IDENTITIES, address):
                reset_at, _ = limiter.limiter.get_window_stats(item, NEW_IDENTITIES, address)
                raise too_many(NEW_IDENTITIES, str(item), reset_at)
    except ApiError:
        raise
    except Exception:
        log.warning("rate limit storage unreachable; new identity allowed", exc_info=True)


def _rate_limited(exc: RateLimitExceeded):
    limit = exc.limit
    scope = limit.scope if isinstance(limit.scope, str) else "requests"
    current = _limiter().current_limit
    reset_at = current.window[0] if current is not None else time.time() + 60
    return too_many(scope, str(limit.limit), reset_at).to_response()


def init_limiter(app: Flask, caller_key: Callable[[], str]) -> Limiter:
    """Limit uploads and token creation, count new identities, trust ``trusted_proxies`` proxy hops.

    ``caller_key()`` names the current caller (``identity.caller_key``: the user, else the address); it is
    passed in because identity charges new identities here (``charge_new_identity``)."""
    settings = app_services(app).settings
    if settings.trusted_proxies > 0:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    limiter = Limiter(
        key_func=caller_key,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        storage_options={"socket_connect_timeout": 2} if settings.redis_url else {},
        key_prefix="maskweb-limits",
        default_limits=[],
        headers_enabled=False,  # our 429 body and Retry-After say it all, from one computation
        swallow_errors=True,
    )
    upload = app.view_functions[UPLOAD_ENDPOINT]
    upload = limiter.limit(settings.upload_rate_limit, key_func=caller_key, scope=UPLOADS_PER_IDENTITY)(
        upload
    )
    upload = limiter.limit(
        settings.address_upload_rate_limit, key_func=address_key, scope=UPLOADS_PER_ADDRESS
    )(upload)
    app.view_functions[UPLOAD_ENDPOINT] = upload
    token = app.view_functions[TOKEN_ENDPOINT]
    app.view_functions[TOKEN_ENDPOINT] = limiter.limit(
        settings.upload_rate_limit, key_func=caller_key, scope=TOKENS_PER_IDENTITY
    )(token)
    app.extensions["maskweb_limiter"] = limiter
    app.extensions["maskweb_identity_limits"] = parse_many(settings.identity_rate_limit)
    app.register_error_handler(RateLimitExceeded, _rate_limited)
    return limiter
