"""The HTTP API under ``/api``: validate, translate to storage calls, answer JSON. Described in ``openapi.py``.

Access rules: a job is visible only to its owner (anyone else gets the same 404 as for a job that does not
exist); a share token gives read-only access to one job; cookie-authenticated POST/DELETE need the CSRF
header (``identity.check_csrf``), bearer-token requests do not.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request, send_file

from backend import __version__
from backend.segmentation.images import ACCEPTED_FORMATS_TEXT, ImageLimits, ImageRejected
from backend.storage import repo
from backend.storage.files import JobFile, check_job_id
from backend.storage.models import DONE, FINISHED_STATES, Job, iso

from . import sharing
from .decoding import DecodeRefused, decode_gate
from .errors import ApiError, not_found
from .identity import (
    check_csrf,
    csrf_token,
    list_api_tokens,
    new_api_token,
    require_user,
    resolve_caller,
    revoke_api_token,
    rotate_cookie,
    secret,
)
from .openapi import openapi_document
from .positions import positions_for
from .preparing import preparer
from .quotas import Quotas
from .services import get_db, services
from .sockets import revoke_share_sockets, sign_out_sockets
from .uploads import UploadedFile, UploadRejected, ingest

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def _identify_and_check_csrf():
    check_csrf(get_db())


def _position(job: Job) -> int | None:
    return positions_for(get_db(), services().settings, [job]).get(job.id)


def _job_json(job: Job, urls_base: str | None = None) -> dict:
    return job.as_dict(_position(job), urls_base=urls_base)


def _own_job(job_id: str) -> Job:
    try:
        check_job_id(job_id)
    except ValueError:
        raise not_found() from None
    db = get_db()
    job = repo.owned_job(db, job_id, resolve_caller(db).user_id)
    if job is None:
        raise not_found()
    return job


def _shared(token: str) -> Job:
    job = repo.shared_job(get_db(), token)
    if job is None:
        raise ApiError(404, "not_found", "This share link does not exist or was revoked.")
    return job


# --- identity, status ---------------------------------------------------------------------------------------


def status_json() -> dict:
    settings = services().settings
    return {
        "version": __version__,
        "weights_missing": settings.weights_missing,
        "limits": {
            "max_file_bytes": settings.max_file_bytes,
            "max_request_bytes": settings.max_request_bytes,
            "max_pixels": settings.max_pixels,
            "formats": ACCEPTED_FORMATS_TEXT,
            "max_queued_jobs_per_user": settings.max_queued_per_user,
            "max_stored_bytes_per_user": settings.max_stored_bytes_per_user,
        },
    }


@bp.get("/session")
def get_session():
    user_id = require_user(get_db())
    return jsonify({"user_id": user_id, "csrf_token": csrf_token(secret(), user_id), **status_json()})


@bp.post("/session/rotate")
def rotate_session():
    """A new identity cookie for the same user; every cookie issued before it stops working."""
    db = get_db()
    caller = resolve_caller(db)
    if caller.via != "cookie":
        raise ApiError(
            400,
            "not_a_cookie",
            "Only a cookie identity can be rotated; revoke API tokens with DELETE /api/tokens/<id>.",
        )
    cut = rotate_cookie(db, caller.user_id)
    db.commit()
    sign_out_sockets({"user_id": caller.user_id, "cookies_before": cut})
    return jsonify(
        {"user_id": caller.user_id, "csrf_token": csrf_token(secret(), caller.user_id), **status_json()}
    )


@bp.get("/status")
def get_status():
    return jsonify(status_json())


@bp.post("/tokens")
def create_token():
    db = get_db()
    user_id = require_user(db)  # no credentials at all: a new user for the script
    token_id, token = new_api_token(db, user_id)
    db.commit()
    return jsonify({"id": token_id, "token": token, "user_id": user_id}), 201


@bp.get("/tokens")
def list_tokens():
    """The caller's API tokens (not their secrets): when made, when last used, which one this request used."""
    db = get_db()
    user_id = require_user(db, create=False)
    current = g.get("api_token_id")
    tokens = [
        {
            "id": t.id,
            "created_at": iso(t.created_at),
            "last_used_at": iso(t.last_used_at),
            "current": t.id == current,
        }
        for t in list_api_tokens(db, user_id)
    ]
    return jsonify({"tokens": tokens})


@bp.delete("/tokens/<int:token_id>")
def delete_token(token_id: int):
    db = get_db()
    user_id = require_user(db, create=False)
    if not revoke_api_token(db, user_id, token_id):
        raise not_found("API token")
    db.commit()
    sign_out_sockets({"token_id": token_id})
    return "", 204


@bp.get("/openapi.json")
def get_openapi():
    return jsonify(openapi_document())


# --- jobs ------------------------------------------------------------------------------------------------------


@bp.post("/jobs")
def create_jobs():
    db = get_db()
    user_id = require_user(db, create=False)
    db.commit()  # the users row, before the upload's own transaction
    svc = services()
    limits = ImageLimits(max_bytes=svc.settings.max_file_bytes, max_pixels=svc.settings.max_pixels)
    files = [UploadedFile(f.filename, f.stream) for f in request.files.getlist("image")]
    try:
        jobs = ingest(
            db, svc.files, user_id, files, limits, Quotas.from_settings(svc.settings), decode_gate()
        )
    except UploadRejected as exc:
        if svc.metrics:
            svc.metrics.upload_rejected(exc.code)
        raise ApiError(exc.status, exc.code, exc.message, **exc.error_fields()) from None
    if svc.metrics:
        svc.metrics.uploaded(len(jobs))
    preparer().schedule(job.id for job in jobs)
    svc.enqueue([job.id for job in jobs])  # starts a dispatcher round; the answer does not wait for it
    positions = positions_for(db, svc.settings, jobs)  # so usually none yet: the round publishes them
    return jsonify({"jobs": [job.as_dict(positions.get(job.id)) for job in jobs]}), 202


def _limit_arg() -> int:
    raw = request.args.get("limit", str(repo.GALLERY_DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(
            400, "bad_limit", f"limit must be an integer from 1 to {repo.GALLERY_MAX_LIMIT}."
        ) from None
    if not 1 <= limit <= repo.GALLERY_MAX_LIMIT:
        raise ApiError(400, "bad_limit", f"limit must be from 1 to {repo.GALLERY_MAX_LIMIT}, got {limit}.")
    return limit


@bp.get("/jobs")
def list_jobs():
    db = get_db()
    user_id = require_user(db)
    try:
        page = repo.gallery_page(
            db,
            user_id,
            cursor=request.args.get("cursor") or None,
            limit=_limit_arg(),
            class_name=request.args.get("class") or None,
        )
    except repo.BadCursor as exc:
        raise ApiError(400, "bad_cursor", f"{exc}; pass next_cursor from the previous page.") from None
    positions = positions_for(db, services().settings, page.jobs)
    return jsonify(
        {"jobs": [job.as_dict(positions.get(job.id)) for job in page.jobs], "next_cursor": page.next_cursor}
    )


@bp.get("/classes")
def list_classes():
    """The classes in the caller's finished results, most frequent first: what the gallery filter suggests."""
    db = get_db()
    counts = repo.class_counts(db, require_user(db))
    return jsonify({"classes": [{"name": name, "count": count} for name, count in counts]})


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    """The job; for its owner also ``share``: the live share link (``sharing.link_json``) or null."""
    job = _own_job(job_id)
    share = sharing.share_state(get_db(), current_app.secret_key, job)
    return jsonify({**_job_json(job), "share": share})


def _result_of(job: Job) -> dict:
    if job.state != DONE:
        raise ApiError(
            409,
            "not_ready",
            f"The job is {job.state}; its result exists once it is done.",
            state=job.state,
        )
    result = services().files.load_result(job.id)
    if result is None:
        raise ApiError(404, "result_missing", "The job is done but its result file is missing from storage.")
    return result


@bp.get("/jobs/<job_id>/result")
def get_result(job_id: str):
    return jsonify(_result_of(_own_job(job_id)))


_FILES = {"image": JobFile.ORIGINAL, "thumbnail": JobFile.THUMBNAIL, "overlay": JobFile.OVERLAY}


def _prepare_now(job: Job) -> None:
    """The job's original and thumbnail from its upload, for a request that came before the background made
    them (``preparing``)."""
    try:
        preparer().ensure(job.id)
    except DecodeRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message, **exc.extra) from None
    except ImageRejected as exc:
        raise ApiError(500, "bad_image", f"The stored upload could not be read: {exc.message}") from None


def _send(job: Job, kind: str):
    """Stream one of the job's files from storage (local or S3) through this process, so every byte a
    browser gets passed the access check of this request (a revoked share link stops at once) and carries
    our headers; README "Scaling out" says why not presigned URLs."""
    if kind == "overlay" and job.state != DONE:
        raise ApiError(
            409, "not_ready", f"The job is {job.state}; its overlay exists once it is done.", state=job.state
        )
    files = services().files
    stored = files.open(job.id, _FILES[kind])
    if stored is None and kind != "overlay" and files.exists(job.id, JobFile.UPLOAD):
        _prepare_now(job)
        stored = files.open(job.id, _FILES[kind])
    if stored is None:
        raise ApiError(404, "file_missing", f"The job's {kind} file is missing from storage.")
    response = send_file(
        stored.stream,
        mimetype=_FILES[kind].media_type,
        conditional=True,
        etag=stored.etag,
        last_modified=stored.modified,
        max_age=3600,
    )
    if response.status_code == 200:
        response.content_length = stored.size
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/jobs/<job_id>/image")
def get_image(job_id: str):
    return _send(_own_job(job_id), "image")


@bp.get("/jobs/<job_id>/thumbnail")
def get_thumbnail(job_id: str):
    return _send(_own_job(job_id), "thumbnail")


@bp.get("/jobs/<job_id>/overlay")
def get_overlay(job_id: str):
    return _send(_own_job(job_id), "overlay")


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str):
    job = _own_job(job_id)
    db = get_db()
    outcome = repo.cancel_job(db, job.id)
    if outcome == "finished":
        db.rollback()
        raise ApiError(
            409,
            "already_finished",
            f"The job is already {job.state}; there is nothing to cancel.",
            state=job.state,
        )
    db.commit()
    services().request_cancel(job)
    return jsonify(_job_json(job)), 200 if outcome == "cancelled" else 202


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str):
    job = _own_job(job_id)
    db = get_db()
    if job.state not in FINISHED_STATES:
        repo.cancel_job(db, job.id)
        db.commit()
        services().request_cancel(job)
    links = repo.live_share_links(db, job.id)
    db.delete(job)
    db.commit()
    services().files.remove_job(job.id)
    revoke_share_sockets(links, job.id, job.user_id)
    return "", 204


# --- sharing ---------------------------------------------------------------------------------------------------


@bp.post("/jobs/<job_id>/share")
def share_job(job_id: str):
    job = _own_job(job_id)
    link, created = sharing.share(get_db(), current_app.secret_key, job)
    return jsonify(link), 201 if created else 200


@bp.delete("/jobs/<job_id>/share")
def unshare_job(job_id: str):
    job = _own_job(job_id)
    db = get_db()
    links = repo.live_share_links(db, job.id)
    revoked = repo.revoke_share_links(db, job.id)
    db.commit()
    revoke_share_sockets(links, job.id, job.user_id)
    return jsonify({"revoked": revoked})


@bp.get("/shared/<token>")
def get_shared(token: str):
    job = _shared(token)
    result = services().files.load_result(job.id) if job.state == DONE else None
    return jsonify({"job": _job_json(job, urls_base=f"/api/shared/{token}"), "result": result})


@bp.get("/shared/<token>/image")
def get_shared_image(token: str):
    return _send(_shared(token), "image")


@bp.get("/shared/<token>/thumbnail")
def get_shared_thumbnail(token: str):
    return _send(_shared(token), "thumbnail")


@bp.get("/shared/<token>/overlay")
def get_shared_overlay(token: str):
    return _send(_shared(token), "overlay")


@bp.get("/shared/<token>/result")
def get_shared_result(token: str):
    return jsonify(_result_of(_shared(token)))
