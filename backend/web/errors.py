"""Errors: JSON for every failure under ``/api`` (and the health endpoints), an HTML page in the app's own
style (``frontend/pages/error.html``) for a browser that asked for a page.

JSON shape: ``{"error": {"status": 404, "code": "not_found", "message": "...", ...extra}}``. ``code`` is a
machine word a client can switch on; ``message`` is one sentence for a person that says what happened and,
where there is one, the limit or what to do instead.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, make_response, render_template, request
from jinja2 import TemplateNotFound
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from backend.segmentation.images import format_bytes
from backend.storage.files.failures import storage_failure

# Werkzeug's status -> our default code.
DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_format",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
    507: "insufficient_storage",
}


DATABASE_RETRY_AFTER_S = 5


class ApiError(Exception):
    """Raise inside a request to answer with a JSON error. ``extra`` keys are added to the error object."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def to_response(self):
        response = _html_page(self) if _wants_page() else None
        if response is None:
            body = {"status": self.status, "code": self.code, "message": self.message, **self.extra}
            response = jsonify({"error": body})
        response.status_code = self.status
        if "retry_after_s" in self.extra:  # 429 and 503: when to try again, for clients that read headers
            response.headers["Retry-After"] = str(self.extra["retry_after_s"])
        return response


# The page heading for a status; the message below it is the error's own sentence.
PAGE_TITLES = {404: "Page not found", 500: "Something went wrong on our side"}
API_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics", "/socket.io")


def _wants_page() -> bool:
    """A browser navigating to a page (not the API, a health probe or a script's fetch)."""
    if request.path.startswith(API_PREFIXES) or request.path == "/api":
        return False
    accept = request.accept_mimetypes
    return accept.accept_html and accept.quality("text/html") >= accept.quality("application/json")


def _html_page(error: ApiError):
    """The error as frontend/pages/error.html, or None when the frontend is not installed (JSON then)."""
    if error.status == 404:
        message = "There is no page at this address. Check the link, or start from the upload page."
    else:
        message = error.message
    try:
        html = render_template(
            "error.html",
            status=error.status,
            heading=PAGE_TITLES.get(error.status, f"Error {error.status}"),
            message=message,
        )
    except TemplateNotFound:
        return None
    return make_response(html, error.status, {"Content-Type": "text/html; charset=utf-8"})


SQLITE_UNAVAILABLE = ("locked", "unable to open", "disk i/o", "readonly")


def database_unavailable(exc: DBAPIError) -> bool:
    """The database could not be reached or used just now (a lost connection, a server that refuses, an SQLite
    file locked or unreadable), as opposed to a query that is wrong (a bug: 500)."""
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        return any(word in str(exc.orig).lower() for word in SQLITE_UNAVAILABLE)
    return True  # PostgreSQL (psycopg): OperationalError is the connection's or the server's state


def not_found(what: str = "job") -> ApiError:
    return ApiError(404, "not_found", f"No such {what}, or it is not yours to see.")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return exc.to_response()

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        limit = app.config.get("MAX_CONTENT_LENGTH")
        sent = request.content_length
        sent_text = f"The request is {format_bytes(sent)}," if sent else "The request is"
        return ApiError(
            413,
            "request_too_large",
            f"{sent_text} over the limit of {format_bytes(limit)} per upload request; send fewer or smaller images.",
            limit_bytes=limit,
        ).to_response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        code = DEFAULT_CODES.get(status, "error")
        message = exc.description or exc.name
        if status == 429:
            message = f"Too many requests: the limit is {exc.description}. Wait a moment and try again."
        return ApiError(status, code, message).to_response()

    @app.errorhandler(OSError)
    def _storage(exc: OSError):
        failure = storage_failure(exc)
        if failure is None:
            return _unexpected(exc)
        app.logger.error("storage failure on %s %s: %s", request.method, request.path, exc)
        return ApiError(507, *failure).to_response()

    @app.errorhandler(DBAPIError)
    def _database(exc: DBAPIError):
        if not database_unavailable(exc):
            return _unexpected(exc)
        app.logger.error("database unavailable on %s %s: %s", request.method, request.path, exc.orig)
        response = ApiError(
            503,
            "database_unavailable",
            "The database is not answering right now, so nothing was read or changed. Try again in a few seconds.",
        ).to_response()
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return ApiError(
            500, "internal_error", "The server failed to handle this request; it has been logged."
        ).to_response()
