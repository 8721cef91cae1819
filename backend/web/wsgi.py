"""The WSGI entry point for gunicorn: ``maskweb web`` runs ``gunicorn -k gevent backend.web.wsgi:app``
(``backend.cli.run.web_argv``).

``MASKWEB_WEB_PROCESSES`` worker processes, one by default (each keeps its own sockets and rooms; events reach
all of them through the Redis message queue, and with more than one Socket.IO is WebSocket-only), settings
from the environment. gevent's worker patches
the standard library before importing this module; ``check_cooperative`` refuses to start when a blocking
piece slipped in first (psycopg picks its wait function when imported: before the patch it would block every
greenlet of the process while a query runs).
"""

from backend.settings import Settings
from backend.web import create_app
from backend.web.sockets import async_mode


def check_cooperative() -> None:
    """Under gevent, psycopg must wait through the patched ``select``; raises RuntimeError otherwise."""
    if async_mode() != "gevent":
        return
    from psycopg import waiting

    if waiting.wait is getattr(waiting, "wait_c", None):
        raise RuntimeError(
            "psycopg was imported before gevent patched the standard library, so its queries would block the "
            "web process; start it with `maskweb web` (gunicorn's gevent worker patches first)"
        )


check_cooperative()
app = create_app(Settings.from_env())
