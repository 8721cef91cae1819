"""gunicorn's access log without share tokens: ``/s/<token>`` and ``/api/shared/<token>/...`` are written as
``/s/<redacted>``. A share token is a bearer credential for someone's photo; log files are copied, shipped
and kept far longer than a link lives. Used as ``--logger-class backend.web.access_log.RedactingLogger``.
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

SHARE_TOKEN_IN_URL = re.compile(r"(/s/|/api/shared/)[^/?#\s\"]+")
REDACTED = r"\1<redacted>"


def redact(text: str) -> str:
    """``text`` with every share token in a URL path replaced."""
    return SHARE_TOKEN_IN_URL.sub(REDACTED, text)


class RedactingLogger(Logger):
    """gunicorn's Logger whose access-log fields (request line, path, referrer, headers) are redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}
