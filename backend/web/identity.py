"""Who is calling: an anonymous visitor (signed cookie), a script (bearer token) or nobody yet.

- Cookie ``maskweb_id``: ``{"u": user id, "iat": issue time (Unix seconds)}`` signed with the app's secret
  (itsdangerous), HttpOnly, SameSite=Lax, one year, ``Secure`` when configured or whenever the request came
  over HTTPS (directly or as told by the proxy's ``X-Forwarded-Proto``). Issued on the first request that
  needs an identity; a cookie with a bad signature is ignored (the caller becomes a new visitor).
  ``POST /api/session/rotate`` issues a fresh cookie and refuses every cookie of that user issued before it
  (``User.cookies_valid_after``): what to do when a cookie may have been copied.
- ``Authorization: Bearer <token>``: a token from ``POST /api/tokens``; only its SHA-256 is stored. A bearer
  header that does not match a token is a 401, never a silent fallback to the cookie. ``GET /api/tokens``
  lists the caller's tokens, ``DELETE /api/tokens/<id>`` revokes one.
- CSRF: a cookie-authenticated POST/PUT/PATCH/DELETE must send ``X-CSRF-Token`` equal to
  ``csrf_token(user_id)``, an HMAC of the user id under the secret (no storage). Bearer requests need none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from flask import Flask, Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.storage.models import ApiToken, User, new_id, secret_digest, utcnow

from .errors import ApiError
from .limits import charge_new_identity, client_address
from .services import get_db

COOKIE_NAME = "maskweb_id"
COOKIE_MAX_AGE = timedelta(days=365)
CSRF_HEADER = "X-CSRF-Token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Caller:
    """``user_id`` None: nobody identified yet. ``via``: ``cookie`` | ``bearer`` | ``new`` (cookie to be set).
    ``stored``: this request already read the user's row (``require_user`` then need not look for it again)."""

    user_id: str | None
    via: str | None
    stored: bool = False


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="maskweb-identity")


def sign_user_id(secret: str, user_id: str, issued_at: float | None = None) -> str:
    """The cookie value for ``user_id``, issued at ``issued_at`` (Unix seconds, default now)."""
    issued = round(time.time() if issued_at is None else issued_at, 3)
    return _serializer(secret).dumps({"u": user_id, "iat": issued})


def read_cookie(secret: str, value: str | None) -> tuple[str, float] | None:
    """``(user id, issue time)`` of a cookie value, or None when missing or tampered with. A cookie from
    before issue times were recorded (a bare user id) counts as issued at 0."""
    if not value:
        return None
    try:
        payload = _serializer(secret).loads(value)
    except BadSignature:
        return None
    if isinstance(payload, str):
        user_id, issued = payload, 0.0
    elif isinstance(payload, dict) and isinstance(payload.get("iat"), int | float):
        user_id, issued = payload.get("u"), float(payload["iat"])
    else:
        return None
    return (user_id, issued) if isinstance(user_id, str) and len(user_id) == 32 else None


def cookie_user(session: Session, secret: str, value: str | None) -> str | None:
    """The user id of a valid cookie: signed by us and not issued before the user last rotated it."""
    return _cookie_identity(session, secret, value)[0]


def _cookie_identity(session: Session, secret: str, value: str | None) -> tuple[str | None, bool]:
    """``(cookie_user's answer, whether the user's row exists)``: a valid cookie whose row is gone (a database
    reset) still names its user, and the row is made again on its next upload (``ensure_user``)."""
    parsed = read_cookie(secret, value)
    if parsed is None:
        return None, False
    user_id, issued = parsed
    user = session.get(User, user_id)
    if user is not None and user.cookies_valid_after is not None:
        if issued < user.cookies_valid_after.timestamp():
            return None, False
    return user_id, user is not None


def unsign_user_id(secret: str, value: str | None) -> str | None:
    """The user id in a cookie value, or None when missing or tampered with (no rotation check)."""
    parsed = read_cookie(secret, value)
    return parsed[0] if parsed else None


def csrf_token(secret: str, user_id: str) -> str:
    """The CSRF token for ``user_id``: HMAC-SHA256 of it under the secret (hex)."""
    return hmac.new(secret.encode(), f"csrf:{user_id}".encode(), hashlib.sha256).hexdigest()


def new_api_token(session: Session, user_id: str) -> tuple[int, str]:
    """Create and store (as SHA-256) a new bearer token for ``user_id``; returns ``(its id, the token)``: the
    id names it in ``GET``/``DELETE /api/tokens``, the token itself is shown only once. Flushes the session."""
    token = "mw_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user_id, token_sha256=secret_digest(token))
    session.add(row)
    session.flush()
    return row.id, token


def token_row(session: Session, token: str) -> ApiToken | None:
    """The stored row of ``token`` (and marks it used), or None."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == secret_digest(token)))
    if row is not None:
        row.last_used_at = utcnow()
    return row


def list_api_tokens(session: Session, user_id: str) -> list[ApiToken]:
    """The user's tokens, oldest first (their secrets are not stored, so not shown)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)))


def revoke_api_token(session: Session, user_id: str, token_id: int) -> bool:
    """Delete the user's token ``token_id``; False when there is none of that id for this user."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:
        return False
    session.delete(row)
    session.flush()
    return True


def ensure_user(session: Session, user_id: str) -> None:
    """Insert the users row for ``user_id`` if it is not there (first upload, or a database reset)."""
    if session.get(User, user_id) is None:
        session.add(User(id=user_id))
        session.flush()


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or ""


def secret() -> str:
    return current_app.config["SECRET_KEY"]


def resolve_caller(session: Session) -> Caller:
    """Identify the current request (cached on ``g``). Raises ApiError 401 for an unknown bearer token."""
    if "caller" in g:
        return g.caller
    token = bearer_token()
    if token is not None:
        row = token_row(session, token) if token else None
        user_id = row.user_id if row is not None else None
        g.api_token_id = row.id if row is not None else None
        if user_id is None:
            raise ApiError(
                401,
                "invalid_token",
                "The bearer token is not valid (revoked or mistyped); create a new one with POST /api/tokens.",
            )
        g.caller = Caller(user_id, "bearer", stored=True)  # a token's row belongs to its user's (foreign key)
    else:
        user_id, stored = _cookie_identity(session, secret(), request.cookies.get(COOKIE_NAME))
        g.caller = Caller(user_id, "cookie" if user_id else None, stored=stored)
    return g.caller


def caller_key() -> str:
    """The rate limits' key for the current request: ``user:<id>`` for an identified caller, else
    ``addr:<address>``."""
    try:
        user_id = resolve_caller(get_db()).user_id
    except ApiError:
        user_id = None
    return f"user:{user_id}" if user_id else f"addr:{client_address()}"


def require_user(session: Session, create: bool = True) -> str:
    """The caller's user id, creating an anonymous identity (and its cookie) when ``create`` and there is
    none (counted against the caller's address: ``limits.charge_new_identity``, 429 over the limit). Without
    ``create``, an unidentified caller is a 401."""
    caller = resolve_caller(session)
    if caller.user_id is None:
        if not create:
            raise ApiError(
                401,
                "unauthenticated",
                "No identity: open GET /api/session first (browsers) or send 'Authorization: Bearer <token>' "
                "(scripts; POST /api/tokens creates one).",
            )
        charge_new_identity()
        caller = g.caller = Caller(new_id(), "new")
    if not caller.stored:
        ensure_user(session, caller.user_id)
        caller = g.caller = replace(caller, stored=True)
    return caller.user_id


def check_csrf(session: Session) -> None:
    """For state-changing requests identified by the cookie, require the matching ``X-CSRF-Token``."""
    if request.method not in STATE_CHANGING:
        return
    caller = resolve_caller(session)
    if caller.via != "cookie":
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent, csrf_token(secret(), caller.user_id)):
        raise ApiError(
            403,
            "csrf_failed",
            f"Missing or wrong {CSRF_HEADER} header: send the csrf_token from GET /api/session with every "
            "POST and DELETE made with the session cookie.",
        )


def request_is_https() -> bool:
    """The browser reached us over HTTPS: directly, or through a proxy that says so. Only used to mark the
    cookie ``Secure``: a client lying about it only keeps its own cookie off plain HTTP."""
    return request.is_secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def rotate_cookie(session: Session, user_id: str) -> float:
    """Refuse every cookie of ``user_id`` issued so far; the response of this request carries a new one.
    Returns the cut (Unix seconds): cookies issued before it no longer identify the user."""
    now = time.time()
    user = session.get(User, user_id)
    user.cookies_valid_after = datetime.fromtimestamp(now, UTC)
    g.cookie_issued_at = now + 0.001  # the new cookie's issue time: after the cut (rounded to ms)
    return now


def set_identity_cookie(response: Response) -> Response:
    """After a request that created an identity or rotated its cookie, send the signed cookie."""
    caller = g.get("caller")
    rotated = g.get("cookie_issued_at")
    if caller is not None and (caller.via == "new" or rotated is not None) and response.status_code < 400:
        response.set_cookie(
            COOKIE_NAME,
            sign_user_id(secret(), caller.user_id, rotated),
            max_age=int(COOKIE_MAX_AGE.total_seconds()),
            httponly=True,
            samesite="Lax",
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request_is_https(),
            path="/",
        )
    return response


def init_identity(app: Flask) -> None:
    app.after_request(set_identity_cookie)
