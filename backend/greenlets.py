"""Whether this process runs on gevent's event loop (a web process under gunicorn's gevent worker).

``gevent_patched(module)`` is true once gevent has patched that standard-library module (``socket``,
``threading``, ``time``...), which gunicorn's gevent worker does before it imports the app. Code that must
behave differently on the event loop (hand blocking work to a real thread, pause a long computation so the
loop can serve others) asks here; it imports nothing of gevent itself, so processes without it are unaffected.
"""

from __future__ import annotations

import sys


def gevent_patched(module: str) -> bool:
    """True when gevent has patched the standard-library module named ``module`` in this process."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched(module)
