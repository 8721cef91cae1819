"""Who may see the operator details of ``/readyz`` and ``/metrics`` (worker host names and pids, error texts,
per-endpoint and per-stage figures): a caller with the configured ops token, or one on this machine.

- ``Authorization: Bearer <MASKWEB_OPS_TOKEN>`` (what Prometheus' ``authorization`` setting sends);
- a loopback caller (127.0.0.0/8, ::1) that came straight in: a request relayed by a reverse proxy on this
  host (it carries ``X-Forwarded-For`` or ``Forwarded``) counts as remote, unless the proxies are trusted
  (``MASKWEB_TRUSTED_PROXIES``), in which case the address is the client's own.

Everyone else gets status and counts only.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import request

from .services import services


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def may_see_details() -> bool:
    settings = services().settings
    token = settings.ops_token
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
        return True
    relayed = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    if relayed and not settings.trusted_proxies:
        return False
    return _loopback(request.remote_addr)
