"""How busy the web process is with HTTP requests, for work that should wait for a lull.

``RequestActivity`` wraps the WSGI app and counts the requests in flight (Socket.IO's long-lived connections
under ``/socket.io/`` are not requests in this sense) and when the last one ended. Background work calls
``wait_quiet(quiet_s, max_wait_s)`` before each piece: it returns once no request has been in flight for
``quiet_s`` seconds, or after ``max_wait_s`` whatever the traffic (so a site that is never quiet still gets
the work done, just later). Under gevent the wait is a greenlet sleeping in short steps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

SOCKET_PREFIX = "/socket.io"
POLL_S = 0.01


class RequestActivity:
    """WSGI middleware counting requests in flight; ``wait_quiet`` for background work."""

    def __init__(self, app: Callable, clock: Callable[[], float] = time.monotonic):
        self.app, self.clock = app, clock
        self._lock = threading.Lock()
        self.in_flight = 0
        self.last_end = clock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(SOCKET_PREFIX):
            return self.app(environ, start_response)
        with self._lock:
            self.in_flight += 1
        try:
            return self.app(environ, start_response)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.last_end = self.clock()

    def quiet_for(self) -> float:
        """Seconds since the last request ended; 0 while one is in flight."""
        with self._lock:
            return 0.0 if self.in_flight else self.clock() - self.last_end

    def wait_quiet(self, quiet_s: float, max_wait_s: float) -> bool:
        """Block until no request has been in flight for ``quiet_s``; True when that happened, False when
        ``max_wait_s`` ran out first."""
        deadline = self.clock() + max_wait_s
        while True:
            quiet = self.quiet_for()
            if quiet >= quiet_s:
                return True
            left = deadline - self.clock()
            if left <= 0:
                return False
            time.sleep(min(left, max(POLL_S, quiet_s - quiet)))
