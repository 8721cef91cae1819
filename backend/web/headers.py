"""Security headers on every response of the web process (an ``after_request`` hook).

- ``Content-Security-Policy`` (``POLICY``): scripts, styles, fonts and connections only from this origin (the
  frontend is ES modules and one stylesheet, no inline script, style or handler, so no ``unsafe-inline``);
  images also from ``blob:`` (previews of files being uploaded) and ``data:`` (the empty favicon); no plugins,
  no ``<base>``, and ``frame-ancestors 'none'``: no other site may frame a page (clickjacking).
- ``X-Content-Type-Options: nosniff``: a stored photo or result is never run as a script or page, whatever
  its bytes look like. ``X-Frame-Options: DENY`` says ``frame-ancestors`` to old browsers.
- ``Referrer-Policy: no-referrer``: share-page URLs carry the share token, and no page may leak its URL to
  another site (or to a proxy log through the ``Referer`` of its own requests).
- Share pages and everything under ``/api/shared/`` are ``Cache-Control: no-store``: once the owner revokes
  the link, a browser has no copy left to show.
"""

from __future__ import annotations

from flask import Flask, Response, request

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SHARED_PREFIXES = ("/s/", "/api/shared/")


def is_shared_path(path: str) -> bool:
    """True for the URLs that hold a share token: the share page and the shared API."""
    return path.startswith(SHARED_PREFIXES)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    if is_shared_path(request.path):
        headers["Cache-Control"] = "no-store"
        headers.pop("ETag", None)
        headers.pop("Last-Modified", None)
        headers.pop("Expires", None)
    return response


def init_security_headers(app: Flask) -> None:
    app.after_request(add_security_headers)
