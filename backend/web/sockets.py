"""Socket.IO: live ``job`` events per job room.

Protocol (docs/ARCHITECTURE.md):

- connect, identified by the ``maskweb_id`` cookie, or ``auth={"token": API_TOKEN}``, or
  ``auth={"share_token": T}`` (an invalid token or share token in ``auth`` refuses the connection);
- emit ``subscribe`` with ``{"job_id": id}`` or ``{"share_token": T}``; the acknowledgement is
  ``{"ok": true, "job": <GET /api/jobs/{id} JSON>}`` read from the database (the source of truth), or
  ``{"ok": false, "error": {"code", "message"}}`` when the caller may not see that job;
- or, for several of one's own jobs at once (a page with a fresh upload of many, a reconnect), ``subscribe``
  with ``{"job_ids": [id, ...]}`` (at most ``MAX_SUBSCRIBE_JOBS``): one message, one database read and one
  position read for all; the acknowledgement is ``{"ok": true, "jobs": [job JSON...], "refused": [{"job_id",
  "error": {"code", "message"}}]}`` (a job one may not see is refused alone), or ``{"ok": false, "error"}`` for
  a malformed list;
- the server then pushes ``job`` events (the same JSON, plus ``emitted_at``: the publisher's UNIX time) to room
  ``job:<id>``: the worker publishes them through the Redis message queue (``backend.jobs.events``);
- emit ``unsubscribe`` with the same payload (``job_ids`` too) to leave the room(s);
- when the owner revokes a share link (or deletes the job), every socket that followed the job through that
  link leaves its room and gets a ``revoked`` event ``{"share_token": T}``: whatever else its subscribe
  message carried (a ``job_id`` too), and also when it subscribed while the revocation was in flight (the
  link is checked again after the socket is registered, so either the revocation finds it or it finds the
  revocation); on every web process: the revocation travels through the message queue like job events
  (``broadcast.py``);
- a socket that connected with an API token is disconnected when that token is deleted, and one that connected
  with an identity cookie when the user rotates the cookie (``POST /api/session/rotate``): it first gets a
  ``signed_out`` event ``{"code": "api_token_revoked" | "cookie_rotated", "message"}``; on every web process,
  the same way. The credential is checked once, at connect: without this, a leaked token deleted by its owner
  would keep its live socket, and could subscribe to the owner's jobs, for as long as it stayed open.

Note: ``job`` events come from the worker with the owner's file URLs (``/api/jobs/<id>/...``); a page
following through a share link builds its URLs from ``/api/shared/<token>`` instead.

``socketio``'s client manager is ``broadcast.make_manager``: Socket.IO's Redis manager on ``settings.redis_url``
(when set), which also carries revocations. Its async mode follows the process:
``gevent`` under gunicorn's gevent worker (``backend.web.server``: one process holds thousands of websockets as
greenlets, simple-websocket gives real WebSockets), ``threading`` elsewhere (tests, werkzeug's server).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flask import Flask, current_app, request
from flask_socketio import SocketIO, join_room, leave_room

from backend.greenlets import gevent_patched
from backend.jobs.events import job_room
from backend.storage import repo
from backend.storage.db import session_scope
from backend.storage.files import check_job_id
from backend.storage.models import secret_digest

from .broadcast import announce_credential_revoked, announce_revocation, make_manager
from .identity import COOKIE_NAME, cookie_user, read_cookie, token_row
from .positions import positions_for
from .services import app_services, services

socketio = SocketIO()
_callers_lock = threading.Lock()


@dataclass(frozen=True)
class SocketCaller:
    """Who a socket connected as: ``user_id`` (None: anonymous, or a share link's viewer), and the credential
    that said so: ``token_id`` (an API token's id) or ``cookie_issued_at`` (the identity cookie's issue time,
    Unix seconds)."""

    user_id: str | None
    token_id: int | None = None
    cookie_issued_at: float | None = None

    def signed_out_by(self, credential: dict) -> str | None:
        """The ``signed_out`` code when ``credential`` (``broadcast.announce_credential_revoked``) is this
        socket's, else None."""
        if self.token_id is not None and credential.get("token_id") == self.token_id:
            return "api_token_revoked"
        if (
            self.cookie_issued_at is not None
            and credential.get("user_id") == self.user_id
            and self.cookie_issued_at < float(credential.get("cookies_before", 0))
        ):
            return "cookie_rotated"
        return None


SIGNED_OUT_MESSAGES = {
    "api_token_revoked": "The API token this connection signed in with was deleted; connect again with a valid one.",
    "cookie_rotated": "This identity cookie was replaced (rotated); reload the page to sign in with the new one.",
}


def _error(code: str, message: str) -> dict:
    return {"ok": False, "error": {"code": code, "message": message}}


@socketio.on("connect")
def on_connect(auth=None):
    svc = services()

    auth = auth if isinstance(auth, dict) else {}
    caller = SocketCaller(None)
    with session_scope(svc.engine) as db:
        if auth.get("token"):
            row = token_row(db, str(auth["token"]))
            if row is None:
                raise ConnectionRefusedError(
                    {"code": "invalid_token", "message": "The API token is not valid."}
                )
            caller = SocketCaller(row.user_id, token_id=row.id)
        elif auth.get("share_token") and repo.shared_job(db, str(auth["share_token"])) is None:
            raise ConnectionRefusedError(
                {"code": "not_found", "message": "This share link does not exist or was revoked."}
            )
        else:
            secret, cookie = current_app.config["SECRET_KEY"], request.cookies.get(COOKIE_NAME)
            user_id = cookie_user(db, secret, cookie)
            if user_id is not None:
                caller = SocketCaller(user_id, cookie_issued_at=read_cookie(secret, cookie)[1])
    with _callers_lock:
        svc.socket_callers[request.sid] = caller


@socketio.on("disconnect")
def on_disconnect(*_args):
    svc = services()
    with _callers_lock:
        svc.socket_callers.pop(request.sid, None)
        for subscribers in svc.share_subscribers.values():
            subscribers.pop(request.sid, None)


def _well_formed(job_id: str) -> bool:
    """Whether ``job_id`` has a job id's form (``check_job_id``)."""
    try:
        check_job_id(job_id)
    except ValueError:
        return False
    return True


def _resolve(data) -> tuple[str | None, dict | None, str | None]:
    """(room, job JSON, None) for a payload the caller may subscribe to, else (None, None, error code)."""
    svc = services()
    if not isinstance(data, dict):
        return None, None, "bad_request"
    caller = svc.socket_callers.get(request.sid, SocketCaller(None))
    with session_scope(svc.engine) as db:
        if data.get("share_token"):
            token = str(data["share_token"])
            job = repo.shared_job(db, token)
            urls_base = f"/api/shared/{token}"
        elif data.get("job_id"):
            job_id = str(data["job_id"])
            if not _well_formed(job_id):
                return None, None, "not_found"
            job = repo.owned_job(db, job_id, caller.user_id)
            urls_base = None
        else:
            return None, None, "bad_request"
        if job is None:
            return None, None, "not_found"
        position = positions_for(db, svc.settings, [job]).get(job.id)
        return job_room(job.id), job.as_dict(position, urls_base=urls_base), None


MAX_SUBSCRIBE_JOBS = 100  # job ids in one ``subscribe``/``unsubscribe`` message

_MESSAGES = {
    "bad_request": 'Send {"job_id": "<id>"}, {"share_token": "<token>"} or {"job_ids": ["<id>", ...]}.',
    "bad_job_ids": f'"job_ids" must be a list of 1 to {MAX_SUBSCRIBE_JOBS} job ids (strings).',
    "not_found": "No such job or share link, or it is not yours to see.",
}


def _job_ids(data) -> list[str] | None:
    """The distinct ids of a ``{"job_ids": [...]}`` payload in their order, or None when it is not a list of 1 to
    ``MAX_SUBSCRIBE_JOBS`` strings."""
    ids = data.get("job_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_SUBSCRIBE_JOBS:
        return None
    if not all(isinstance(job_id, str) for job_id in ids):
        return None
    return list(dict.fromkeys(ids))


def _subscribe_jobs(ids: list[str]) -> dict:
    """``subscribe`` with ``job_ids``: one read of the caller's jobs among ``ids`` and of their positions; joins
    each one's room; the others are refused one by one (``not_found``: someone else's, gone, or malformed)."""
    svc = services()
    caller = svc.socket_callers.get(request.sid, SocketCaller(None))
    with session_scope(svc.engine) as db:
        found = {
            job.id: job for job in repo.owned_jobs(db, [i for i in ids if _well_formed(i)], caller.user_id)
        }
        positions = positions_for(db, svc.settings, list(found.values()))
        jobs, refused = [], []
        not_found = _error("not_found", _MESSAGES["not_found"])["error"]
        for job_id in ids:
            job = found.get(job_id)
            if job is None:
                refused.append({"job_id": job_id, "error": not_found})
                continue
            join_room(job_room(job_id))
            jobs.append(job.as_dict(positions.get(job_id)))
    return {"ok": True, "jobs": jobs, "refused": refused}


@socketio.on("subscribe")
def on_subscribe(data=None):
    if isinstance(data, dict) and "job_ids" in data:
        ids = _job_ids(data)
        return _subscribe_jobs(ids) if ids is not None else _error("bad_request", _MESSAGES["bad_job_ids"])
    room, job, error = _resolve(data)
    if error:
        return _error(error, _MESSAGES[error])
    token = str(data["share_token"]) if data.get("share_token") else None
    svc = services()
    if token is not None:
        # Registered before joining and checked again after: a revocation that committed before the check is
        # seen by it, and one that commits after it finds this socket in share_subscribers.
        with _callers_lock:
            svc.share_subscribers.setdefault(secret_digest(token), {})[request.sid] = token
    join_room(room)
    if token is not None:
        with session_scope(svc.engine) as db:
            still_live = repo.shared_job(db, token) is not None
        if not still_live:
            leave_room(room)
            with _callers_lock:
                svc.share_subscribers.get(secret_digest(token), {}).pop(request.sid, None)
            return _error("not_found", _MESSAGES["not_found"])
    return {"ok": True, "job": job}


def drop_share_subscribers(svc, links: list[str], job_id: str, owner_id: str) -> None:
    """After share links were revoked (``links``: their ``token_sha256``): take every socket that followed the
    job through them out of its room and tell it with a ``revoked`` event ``{"share_token": T}``. The owner's
    own sockets stay.

    Covers the sockets of this web process; ``revoke_share_sockets`` runs it on every web process.
    """
    server = socketio.server
    if server is None:
        return
    for digest in links:
        with _callers_lock:
            subscribers = svc.share_subscribers.pop(digest, {})
        for sid, token in subscribers.items():
            caller = svc.socket_callers.get(sid)
            if caller is not None and caller.user_id == owner_id:
                continue
            server.leave_room(sid, job_room(job_id), namespace="/")
            server.emit("revoked", {"share_token": token}, to=sid, namespace="/")


def drop_signed_out(svc, credential: dict) -> None:
    """After a credential was revoked (``broadcast.announce_credential_revoked``): send each socket of this web
    process that connected with it a ``signed_out`` event, then disconnect it."""
    server = socketio.server
    if server is None:
        return
    with _callers_lock:
        signed_out = [(sid, caller.signed_out_by(credential)) for sid, caller in svc.socket_callers.items()]
    for sid, code in signed_out:
        if code is None:
            continue
        server.emit("signed_out", {"code": code, "message": SIGNED_OUT_MESSAGES[code]}, to=sid, namespace="/")
        server.disconnect(sid, namespace="/", ignore_queue=True)  # ours: this process holds it


def sign_out_sockets(credential: dict) -> None:
    """After a credential was revoked (committed): ``drop_signed_out`` on every web process. ``credential`` is
    ``{"token_id": id}`` or ``{"user_id": id, "cookies_before": unix_s}``."""
    if socketio.server is not None:
        announce_credential_revoked(socketio.server, credential)


def revoke_share_sockets(links: list[str], job_id: str, owner_id: str) -> None:
    """After share links were revoked (committed): ``drop_share_subscribers`` on every web process."""
    if socketio.server is not None:
        announce_revocation(socketio.server, job_id, owner_id, links)


@socketio.on("unsubscribe")
def on_unsubscribe(data=None):
    """Leave a job's room. No access check: leaving a room one is not in changes nothing, and a link revoked
    meanwhile must still be leavable."""
    svc = services()
    if not isinstance(data, dict):
        return _error("bad_request", _MESSAGES["bad_request"])
    if "job_ids" in data:
        ids = _job_ids(data)
        if ids is None or not all(_well_formed(job_id) for job_id in ids):
            return _error("bad_request", _MESSAGES["bad_job_ids"])
        for job_id in ids:
            leave_room(job_room(job_id))
        return {"ok": True}
    job_id = data.get("job_id")
    if not job_id and data.get("share_token"):
        with session_scope(svc.engine) as db:
            link = repo.share_link(db, str(data["share_token"]))
            job_id = link.job_id if link is not None else None
    if not _well_formed(str(job_id)):
        return _error("bad_request", _MESSAGES["bad_request"])
    leave_room(job_room(str(job_id)))
    return {"ok": True}


def async_mode() -> str:
    """``gevent`` when the standard library is gevent-patched (gunicorn's gevent worker), else ``threading``."""
    return "gevent" if gevent_patched("socket") else "threading"


def init_socketio(app: Flask) -> SocketIO:
    svc = app_services(app)
    settings = svc.settings

    def on_revoked(job_id: str, owner_id: str, links: list[str]) -> None:
        drop_share_subscribers(svc, links, job_id, owner_id)

    def on_credential_revoked(credential: dict) -> None:
        drop_signed_out(svc, credential)

    socketio.init_app(
        app,
        async_mode=async_mode(),
        client_manager=make_manager(settings.redis_url, on_revoked, on_credential_revoked),
        transports=allowed_transports(settings.web_processes),
    )
    return socketio


def allowed_transports(web_processes: int) -> list[str]:
    """Engine.IO transports a web server of ``web_processes`` processes behind one port can serve. Long-polling
    keeps a session in the process that opened it and sends every later request of it there; gunicorn hands a
    connection to whichever process accepts first, so with several processes only WebSocket (one connection,
    one process for its life) works. The page asks for WebSocket first either way."""
    return ["websocket"] if web_processes > 1 else ["polling", "websocket"]
