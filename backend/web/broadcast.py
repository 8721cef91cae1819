"""Revocations reach the sockets of every web process, through the Socket.IO message queue: share links, API
tokens and rotated identity cookies.

A socket lives in exactly one web process, and only that process can take it out of a room. Job progress
already reaches every process (the worker emits through the Redis message queue and each process delivers to
its own sockets); a revocation has to travel the same way. It does, as a ``close_room`` of a room nobody is
in, named after what was revoked::

    revoked:["<job id>", "<owner id>", ["<link key>", ...]]

``close_room`` is one of the operations Socket.IO's pub/sub manager publishes to every process on the
queue's channel (the one ``backend.jobs.events`` emits on, so no second connection or listener is needed).
The managers below notice such a room on every process, the sender's included, and call
``on_revoked(job_id, owner_id, link_keys)`` there, which evicts that process's sockets of those links.

A revoked credential (an API token deleted, an identity cookie rotated) travels the same way::

    credential-revoked:{"token_id": 7}
    credential-revoked:{"user_id": "<id>", "cookies_before": 1767000000.123}

and ``on_credential_revoked(credential)`` disconnects that process's sockets that connected with it.

Failure modes: with Redis unreachable the message is lost like any event and only this process evicts
(python-socketio logs the error; clients still lose access at once, since every HTTP request and subscription
checks the link in the database). The callback runs on the manager's listening thread (or greenlet): it
must not block.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import socketio

log = logging.getLogger(__name__)

PREFIX = "revoked:"
CREDENTIAL_PREFIX = "credential-revoked:"
OnRevoked = Callable[[str, str, list[str]], None]
OnCredentialRevoked = Callable[[dict], None]


def revocation_room(job_id: str, owner_id: str, link_keys: list[str]) -> str:
    """The name of the (empty) room whose closing announces the revocation."""
    return PREFIX + json.dumps([job_id, owner_id, list(link_keys)], separators=(",", ":"))


class _NoticesRevocations:
    """Mixin over python-socketio's base ``Manager``: runs ``on_revoked`` or ``on_credential_revoked`` when a
    revocation room closes.

    It must sit below the pub/sub manager in the method order, where both a local ``close_room`` and one
    received from another process arrive."""

    on_revoked: OnRevoked | None = None
    on_credential_revoked: OnCredentialRevoked | None = None

    def close_room(self, room, namespace):
        if isinstance(room, str) and room.startswith(PREFIX) and self.on_revoked is not None:
            try:
                job_id, owner_id, link_keys = json.loads(room[len(PREFIX) :])
                self.on_revoked(job_id, owner_id, link_keys)
            except Exception:
                log.exception("could not evict the sockets of revoked share links (%s)", room)
            return None
        if isinstance(room, str) and room.startswith(CREDENTIAL_PREFIX):
            if self.on_credential_revoked is not None:
                try:
                    self.on_credential_revoked(json.loads(room[len(CREDENTIAL_PREFIX) :]))
                except Exception:
                    log.exception("could not disconnect the sockets of a revoked credential (%s)", room)
            return None
        return super().close_room(room, namespace)


class LocalManager(_NoticesRevocations, socketio.Manager):
    """One web process, no message queue (tests, ``create_app`` without Redis)."""


class RedisManager(socketio.RedisManager, _NoticesRevocations, socketio.Manager):
    """Several web processes sharing Redis: Socket.IO's Redis manager, noticing revocations."""


def make_manager(
    redis_url: str | None,
    on_revoked: OnRevoked,
    on_credential_revoked: OnCredentialRevoked | None = None,
    channel: str = "flask-socketio",
):
    """The client manager of the web's Socket.IO server. ``channel`` must be the one the workers' emitters
    use (Flask-SocketIO's default)."""
    manager = RedisManager(redis_url, channel=channel) if redis_url else LocalManager()
    manager.on_revoked = on_revoked
    manager.on_credential_revoked = on_credential_revoked
    return manager


def announce_revocation(server, job_id: str, owner_id: str, link_keys: list[str]) -> None:
    """Tell every web process (this one first, synchronously) that ``link_keys`` of ``job_id`` were revoked."""
    if link_keys:
        server.close_room(revocation_room(job_id, owner_id, link_keys), namespace="/")


def announce_credential_revoked(server, credential: dict) -> None:
    """Tell every web process (this one first, synchronously) that ``credential`` no longer identifies anyone:
    ``{"token_id": id}`` (an API token deleted) or ``{"user_id": id, "cookies_before": unix_s}`` (the user's
    identity cookies issued before that time, after a rotation)."""
    room = CREDENTIAL_PREFIX + json.dumps(credential, separators=(",", ":"), sort_keys=True)
    server.close_room(room, namespace="/")
