"""Waiting for SQLite's write lock without stopping the process's other greenlets.

SQLite waits for a lock that another connection holds in its busy handler, which sleeps in C. Under gevent that
stops every greenlet of the process for as long as the other writer keeps the lock: each request and socket of
a web process freezes while, say, a worker's dispatcher round (up to 50 UPDATEs) or a long transaction
finishes, though only one request needed the lock.

``CooperativeConnection`` is a ``sqlite3.Connection`` (pass it as ``factory``, with ``timeout=0`` so SQLite
itself does not wait) whose statements and commits, when refused with ``SQLITE_BUSY``, are tried again after a
``time.sleep``: gevent's under its patch (the other greenlets run meanwhile), a plain sleep with the GIL released
otherwise. The sleeps back off from 1 ms to 50 ms; after ``busy_timeout_s`` in all the last
``sqlite3.OperationalError`` ("database is locked") is raised, as SQLite's own timeout would.

Trying again is what SQLite's busy handler does: a statement refused with ``SQLITE_BUSY`` changed nothing.
``SQLITE_BUSY_SNAPSHOT`` is not retried (SQLite does not wait on it either: the transaction read a snapshot that
a later commit made stale, and only a new transaction can write).
"""

from __future__ import annotations

import sqlite3
import time

SQLITE_BUSY = 5
SQLITE_BUSY_RECOVERY = 261  # another connection is recovering the WAL: worth waiting for too
RETRIED = frozenset({SQLITE_BUSY, SQLITE_BUSY_RECOVERY})
BACKOFF_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)  # then 50 ms each time


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in RETRIED


def _retrying(busy_timeout_s: float, attempt):
    """``attempt()`` until it is not refused with SQLITE_BUSY or ``busy_timeout_s`` has passed."""
    deadline = time.monotonic() + busy_timeout_s
    tries = 0
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            left = deadline - time.monotonic()
            if not _is_busy(exc) or left <= 0:
                raise
            time.sleep(min(BACKOFF_S[min(tries, len(BACKOFF_S) - 1)], left))
            tries += 1


class CooperativeCursor(sqlite3.Cursor):
    def execute(self, sql, parameters=(), /):
        return _retrying(
            self.connection.busy_timeout_s, lambda: super(CooperativeCursor, self).execute(sql, parameters)
        )

    def executemany(self, sql, seq_of_parameters, /):
        rows = list(seq_of_parameters)  # an iterator could not be replayed after a refusal
        return _retrying(
            self.connection.busy_timeout_s, lambda: super(CooperativeCursor, self).executemany(sql, rows)
        )


class CooperativeConnection(sqlite3.Connection):
    """A SQLite connection whose lock waits yield (``busy_timeout_s``, 30 s unless set after connecting)."""

    busy_timeout_s = 30.0

    def cursor(self, factory=CooperativeCursor):
        return super().cursor(factory)

    def execute(self, sql, parameters=(), /):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        return self.cursor().executemany(sql, seq_of_parameters)

    def commit(self):
        return _retrying(self.busy_timeout_s, super().commit)
