"""The OpenAPI 3.1 description of ``/api``, written by hand (served at ``/api/openapi.json``).

``tests/web/test_openapi.py`` checks that every ``/api`` route of the app is described here and nothing else.
"""

from __future__ import annotations

from copy import deepcopy

from backend import __version__
from backend.storage.models import STAGES, STATES


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(_ref("Error"), description)


def _binary(media: str, description: str) -> dict:
    return {
        "description": description,
        "content": {media: {"schema": {"type": "string", "format": "binary"}}},
    }


JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
SHARE_TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
NOT_FOUND = _error("No such job, or not the caller's (the same answer either way, so ids leak nothing).")
SHARE_NOT_FOUND = _error("Unknown or revoked share token.")
CSRF = _error("Cookie-authenticated request without the right X-CSRF-Token header (code `csrf_failed`).")
AUTH = _error("Unknown bearer token (`invalid_token`) or no identity at all (`unauthenticated`).")
NOT_READY = _error("The job is not done yet (code `not_ready`, with its `state`).")

UPLOAD_DESCRIPTION = """\
Upload one or more images (multipart field `image`, repeatable); each becomes a job.

**All or nothing.** Every file is checked first — size per file, format by content (JPEG, PNG, WebP, BMP,
TIFF, GIF first frame; the file name is ignored), width x height from the header before decoding. If any
file is refused, no job is created and nothing is stored: the error names the file (`filename`, 0-based
`index`), what was wrong (`code`) and the limit (`message`). Codes: `too_large` (413, per-file byte limit),
`request_too_large` (413, whole request), `too_many_pixels` (413), `unsupported_format` (415),
`not_an_image` (415), `truncated` (400), `empty` (400), `no_images` (400), `too_many_files` (400).
Accepted images are normalised to 8-bit RGB (EXIF orientation applied; 16-bit, CMYK, palette, greyscale
converted; transparency composited on white) and queued.

**Limits and quotas.** Every refusal below names its `limit`; those that pass with time say when to retry
(`Retry-After` header, `retry_after_s`, `retry_at`):
- 429 `rate_limited`, `limit` `uploads_per_identity` or `uploads_per_address` (Flask-Limiter, shared by
  every web process through Redis);
- 429 `quota_exceeded`, `limit` `queued_jobs_per_user`: too many unfinished jobs (`used`, `allowed`);
- 403 `quota_exceeded`, `limit` `stored_bytes_per_user`: the user's kept uploads would exceed the quota
  (`used`, `allowed` in bytes); deleting jobs makes room;
- 507 `insufficient_storage`, `limit` `free_disk`: the server's data disk is near its margin;
- 503 `decoder_busy`: the server's image decoders stayed busy; retry after `retry_after_s`;
- 413 `too_much_memory`: decoding the image would need more memory than the server allows for decoding.
"""

RATE_LIMITED = _error(
    "Too many requests (`rate_limited`): `limit` names which (`new_identities_per_address`, "
    "`uploads_per_identity`, `uploads_per_address`, `tokens_per_identity`), `limit_text` its value, "
    "`retry_after_s` (also the `Retry-After` header) and `retry_at` when to try again."
)

SHARE_DESCRIPTION = """\
Share the job (any state: the shared page follows a queued or running job live until it is done). A job
has one live link: sharing again answers it (200) instead of minting another; after DELETE the next share
makes a new one (201). The token carries 256 bits (an HMAC of the server's secret key; the database keeps
only its SHA-256); whoever holds it can read this one job, its files and result — nothing else, and
nothing can be changed through it. GET /api/jobs/{job_id} tells the owner the live link as `share`.
"""

SCHEMAS: dict = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "code", "message"],
                "properties": {
                    "status": {"type": "integer"},
                    "code": {"type": "string", "description": "machine-readable reason"},
                    "message": {
                        "type": "string",
                        "description": "what was wrong and, where there is one, the limit",
                    },
                    "filename": {"type": "string"},
                    "index": {"type": "integer"},
                    "state": {"type": "string"},
                    "limit_bytes": {"type": "integer"},
                    "limit": {
                        "type": "string",
                        "description": "which rate limit or quota was hit (429, 403 quota_exceeded, 507)",
                    },
                    "limit_text": {"type": "string", "description": "a rate limit, e.g. `20 per 1 minute`"},
                    "retry_after_s": {
                        "type": "integer",
                        "description": "seconds to wait before retrying; also the Retry-After header",
                    },
                    "retry_at": {"type": "string", "format": "date-time"},
                    "used": {"type": "integer", "description": "a quota's current use"},
                    "allowed": {"type": "integer", "description": "a quota's value"},
                },
                "additionalProperties": True,
            }
        },
    },
    "JobUrls": {
        "type": "object",
        "properties": {
            "image": {"type": "string"},
            "thumbnail": {"type": "string"},
            "overlay": {"type": ["string", "null"], "description": "null until done"},
            "result": {"type": ["string", "null"], "description": "null until done"},
        },
    },
    "ShareLink": {
        "type": "object",
        "properties": {
            "token": {"type": ["string", "null"]},
            "url": {"type": ["string", "null"], "description": "/s/<token>, the page"},
            "api_url": {"type": ["string", "null"], "description": "/api/shared/<token>"},
        },
        "required": ["token", "url", "api_url"],
    },
    "Job": {
        "type": "object",
        "required": ["id", "state", "stage", "progress", "queue_position", "revision", "urls"],
        "properties": {
            "id": {"type": "string"},
            "state": {"enum": list(STATES)},
            "stage": {"enum": [*STAGES, None]},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "queue_position": {"type": ["integer", "null"], "description": "1-based while queued, else null"},
            "filename": {"type": "string"},
            "width": {"type": ["integer", "null"]},
            "height": {"type": ["integer", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "error": {"type": ["string", "null"]},
            "error_code": {"type": ["string", "null"]},
            "instance_count": {"type": ["integer", "null"]},
            "classes": {"type": "array", "items": {"type": "string"}},
            "timings": {
                "type": "object",
                "additionalProperties": {"type": "number"},
                "description": "seconds per stage",
            },
            "stage_estimates": {
                "type": ["object", "null"],
                "additionalProperties": {"type": "number"},
                "description": "seconds each stage is expected to take (median of recent finished jobs; "
                "written when a worker claims the job; null before any job finished)",
            },
            "stage_elapsed_s": {
                "type": ["number", "null"],
                "description": "seconds since the running job's current stage began; null unless running",
            },
            "cancel_requested": {"type": "boolean"},
            "revision": {
                "type": "integer",
                "minimum": 0,
                "description": "one more at every change of the job; events can arrive out of order, so a "
                "client keeps the highest revision it has seen and ignores a job with a lower one (a queue "
                "position can change at the same revision)",
            },
            "urls": _ref("JobUrls"),
        },
    },
    "Instance": {
        "type": "object",
        "required": ["id", "class_id", "class_name", "score", "box", "mask"],
        "properties": {
            "id": {"type": "integer"},
            "class_id": {"type": "integer"},
            "class_name": {"type": "string"},
            "score": {"type": "number"},
            "box": {
                "type": "array",
                "items": {"type": "integer"},
                "minItems": 4,
                "maxItems": 4,
                "description": "[x1, y1, x2, y2] in image pixels, x2/y2 exclusive",
            },
            "mask": {
                "type": "object",
                "description": "COCO compressed RLE (column-major), counts as a string",
                "properties": {
                    "size": {"type": "array", "items": {"type": "integer"}, "description": "[height, width]"},
                    "counts": {"type": "string"},
                },
            },
        },
    },
    "Result": {
        "type": "object",
        "required": ["width", "height", "instances"],
        "properties": {
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "instances": {
                "type": "array",
                "items": _ref("Instance"),
                "description": "sorted by score, highest first",
            },
        },
    },
    "Status": {
        "type": "object",
        "properties": {
            "version": {"type": "string"},
            "weights_missing": {
                "type": ["string", "null"],
                "description": "null when the model weights are present, else how to get them",
            },
            "limits": {
                "type": "object",
                "properties": {
                    "max_file_bytes": {"type": "integer"},
                    "max_request_bytes": {"type": "integer"},
                    "max_pixels": {"type": "integer"},
                    "formats": {"type": "string"},
                    "max_queued_jobs_per_user": {"type": "integer", "description": "unfinished jobs"},
                    "max_stored_bytes_per_user": {"type": "integer", "description": "uploads kept"},
                },
            },
        },
    },
}


def _paths() -> dict:
    job_read = {"parameters": [JOB_ID]}
    shared = {"parameters": [SHARE_TOKEN]}
    return {
        "/api/session": {
            "get": {
                "summary": "The caller's identity and CSRF token; sets the identity cookie on the first visit",
                "responses": {
                    "200": _json(
                        {
                            "allOf": [
                                _ref("Status"),
                                {
                                    "type": "object",
                                    "required": ["user_id", "csrf_token"],
                                    "properties": {
                                        "user_id": {"type": "string"},
                                        "csrf_token": {"type": "string"},
                                    },
                                },
                            ]
                        },
                        "The identity; send csrf_token as X-CSRF-Token with cookie-authenticated POST/DELETE",
                    ),
                    "401": AUTH,
                    "429": RATE_LIMITED,
                },
            }
        },
        "/api/status": {
            "get": {
                "summary": "Server status: version, upload limits, whether model weights are missing",
                "responses": {"200": _json(_ref("Status"), "Status")},
            }
        },
        "/api/tokens": {
            "post": {
                "summary": "A new API token for scripts (Authorization: Bearer)",
                "description": "For the caller's identity (cookie + CSRF header, or a bearer token); a caller "
                "with no credentials gets a new identity. Only the token's SHA-256 is stored: it is shown once.",
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "required": ["id", "token", "user_id"],
                            "properties": {
                                "id": {
                                    "type": "integer",
                                    "description": "names the token in /api/tokens/{id}",
                                },
                                "token": {"type": "string"},
                                "user_id": {"type": "string"},
                            },
                        },
                        "The token (shown only this once) and its id",
                    ),
                    "401": AUTH,
                    "403": CSRF,
                    "429": RATE_LIMITED,
                },
            },
            "get": {
                "summary": "The caller's API tokens (their secrets are not stored, so not shown)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["tokens"],
                            "properties": {
                                "tokens": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["id", "created_at", "last_used_at", "current"],
                                        "properties": {
                                            "id": {"type": "integer"},
                                            "created_at": {"type": "string", "format": "date-time"},
                                            "last_used_at": {
                                                "type": ["string", "null"],
                                                "format": "date-time",
                                            },
                                            "current": {
                                                "type": "boolean",
                                                "description": "the token this request was made with",
                                            },
                                        },
                                    },
                                }
                            },
                        },
                        "The tokens, oldest first",
                    ),
                    "401": AUTH,
                },
            },
        },
        "/api/tokens/{token_id}": {
            "parameters": [
                {"name": "token_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "delete": {
                "summary": "Revoke one of the caller's API tokens; requests with it get 401 from now on",
                "description": "Socket.IO connections opened with the token get a signed_out event and are "
                "disconnected.",
                "responses": {
                    "204": {"description": "Revoked"},
                    "401": AUTH,
                    "403": CSRF,
                    "404": _error("No such token of the caller's."),
                },
            },
        },
        "/api/session/rotate": {
            "post": {
                "summary": "A new identity cookie for the same user; every cookie issued before it stops working",
                "description": "For when a cookie may have been copied. Cookie callers only (with X-CSRF-Token). "
                "Socket.IO connections opened with an older cookie get a signed_out event and are disconnected.",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["user_id", "csrf_token"],
                            "properties": {"user_id": {"type": "string"}, "csrf_token": {"type": "string"}},
                        },
                        "The same identity, in the new cookie set by this response",
                    ),
                    "400": _error("The caller is not identified by a cookie (`not_a_cookie`)."),
                    "401": AUTH,
                    "403": CSRF,
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
        "/api/jobs": {
            "post": {
                "summary": "Upload images; one queued job per image",
                "description": UPLOAD_DESCRIPTION,
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "image": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "binary"},
                                    }
                                },
                                "required": ["image"],
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json(
                        {"type": "object", "properties": {"jobs": {"type": "array", "items": _ref("Job")}}},
                        "Accepted: the jobs, in upload order, with their queue positions",
                    ),
                    "400": _error("no_images, too_many_files, truncated, empty"),
                    "401": AUTH,
                    "403": _error("csrf_failed, or quota_exceeded (`limit` stored_bytes_per_user)"),
                    "413": _error(
                        "too_large (per file), request_too_large, too_many_pixels, too_much_memory"
                    ),
                    "415": _error("unsupported_format, not_an_image"),
                    "429": _error(
                        "rate_limited (`limit` uploads_per_identity, uploads_per_address), or quota_exceeded "
                        "(`limit` queued_jobs_per_user, with `used` and `allowed`); both with `retry_after_s`"
                    ),
                    "503": _error("decoder_busy: the image decoders stayed busy; retry after retry_after_s"),
                    "507": _error("insufficient_storage (`limit` free_disk)"),
                },
            },
            "get": {
                "summary": "The caller's gallery: newest first, cursor pagination, filter by detected class",
                "parameters": [
                    {
                        "name": "cursor",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "next_cursor of the previous page",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 24},
                    },
                    {
                        "name": "class",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "only jobs whose result has a class whose name starts with this, in any case",
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "jobs": {"type": "array", "items": _ref("Job")},
                                "next_cursor": {"type": ["string", "null"]},
                            },
                        },
                        "A page of jobs",
                    ),
                    "400": _error("bad_cursor or bad_limit"),
                    "401": AUTH,
                },
            },
        },
        "/api/classes": {
            "get": {
                "summary": "The classes in the caller's finished results, most frequent first",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "classes": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "name": {"type": "string"},
                                            "count": {"type": "integer", "minimum": 1},
                                        },
                                        "required": ["name", "count"],
                                    },
                                }
                            },
                            "required": ["classes"],
                        },
                        "Each class with the number of results that hold it",
                    ),
                    "401": AUTH,
                },
            }
        },
        "/api/jobs/{job_id}": {
            **job_read,
            "get": {
                "summary": "A job's state; for its owner also whether it is shared, and by which link",
                "responses": {
                    "200": _json(
                        {
                            "allOf": [
                                _ref("Job"),
                                {
                                    "type": "object",
                                    "properties": {"share": {"oneOf": [{"type": "null"}, _ref("ShareLink")]}},
                                    "required": ["share"],
                                },
                            ]
                        },
                        "The job; `share` is its live link (url null when made under an earlier secret key)",
                    ),
                    "404": NOT_FOUND,
                },
            },
            "delete": {
                "summary": "Delete a job, its files and its share links (a running job is cancelled first)",
                "responses": {"204": {"description": "Deleted"}, "403": CSRF, "404": NOT_FOUND},
            },
        },
        "/api/jobs/{job_id}/result": {
            **job_read,
            "get": {
                "summary": "The segmentation result",
                "responses": {"200": _json(_ref("Result"), "The result"), "404": NOT_FOUND, "409": NOT_READY},
            },
        },
        "/api/jobs/{job_id}/image": {
            **job_read,
            "get": {
                "summary": "The original, normalised to RGB",
                "responses": {"200": _binary("image/png", "PNG"), "404": NOT_FOUND},
            },
        },
        "/api/jobs/{job_id}/thumbnail": {
            **job_read,
            "get": {
                "summary": "A thumbnail (at most 320 px)",
                "responses": {"200": _binary("image/jpeg", "JPEG"), "404": NOT_FOUND},
            },
        },
        "/api/jobs/{job_id}/overlay": {
            **job_read,
            "get": {
                "summary": "The rendered overlay",
                "responses": {"200": _binary("image/png", "PNG"), "404": NOT_FOUND, "409": NOT_READY},
            },
        },
        "/api/jobs/{job_id}/cancel": {
            **job_read,
            "post": {
                "summary": "Cancel a job",
                "description": "A queued job is cancelled at once (200). A running job is marked "
                "cancel_requested and stops at its next stage boundary (202). A finished job: 409.",
                "responses": {
                    "200": _json(_ref("Job"), "Cancelled"),
                    "202": _json(_ref("Job"), "Cancellation requested"),
                    "403": CSRF,
                    "404": NOT_FOUND,
                    "409": _error("already_finished"),
                },
            },
        },
        "/api/jobs/{job_id}/share": {
            **job_read,
            "post": {
                "summary": "Share the job: its live read-only link, made when it has none",
                "description": SHARE_DESCRIPTION,
                "responses": {
                    "200": _json(_ref("ShareLink"), "The job's live link (nothing new was made)"),
                    "201": _json(_ref("ShareLink"), "A new link"),
                    "403": CSRF,
                    "404": NOT_FOUND,
                },
            },
            "delete": {
                "summary": "Revoke every share link of the job",
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"revoked": {"type": "integer"}}},
                        "How many were revoked",
                    ),
                    "403": CSRF,
                    "404": NOT_FOUND,
                },
            },
        },
        "/api/shared/{token}": {
            **shared,
            "get": {
                "summary": "A shared job and its result (null until done), read-only",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "job": _ref("Job"),
                                "result": {"oneOf": [_ref("Result"), {"type": "null"}]},
                            },
                        },
                        "The shared job; its urls point under /api/shared/<token>",
                    ),
                    "404": SHARE_NOT_FOUND,
                },
            },
        },
        "/api/shared/{token}/result": {
            **shared,
            "get": {
                "summary": "A shared job's result",
                "responses": {
                    "200": _json(_ref("Result"), "The result"),
                    "404": SHARE_NOT_FOUND,
                    "409": NOT_READY,
                },
            },
        },
        "/api/shared/{token}/image": {
            **shared,
            "get": {
                "summary": "A shared job's original",
                "responses": {"200": _binary("image/png", "PNG"), "404": SHARE_NOT_FOUND},
            },
        },
        "/api/shared/{token}/thumbnail": {
            **shared,
            "get": {
                "summary": "A shared job's thumbnail",
                "responses": {"200": _binary("image/jpeg", "JPEG"), "404": SHARE_NOT_FOUND},
            },
        },
        "/api/shared/{token}/overlay": {
            **shared,
            "get": {
                "summary": "A shared job's overlay",
                "responses": {"200": _binary("image/png", "PNG"), "404": SHARE_NOT_FOUND, "409": NOT_READY},
            },
        },
    }


PUBLIC_PATHS = ("/api/status", "/api/openapi.json", "/api/shared/")
PUBLIC_OPERATIONS = {("/api/tokens", "post")}  # a caller with no credentials gets a new identity


def _mark_public(paths: dict) -> dict:
    """Operations that need no identity (a share token in the path is the credential) say so."""
    for path, item in paths.items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            if path.startswith(PUBLIC_PATHS) or (path, method) in PUBLIC_OPERATIONS:
                operation["security"] = []
            else:  # any of them can meet an unknown (revoked) bearer token
                operation["responses"].setdefault("401", AUTH)
    return paths


def openapi_document() -> dict:
    """The document as a fresh dict."""
    return deepcopy(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "maskweb API",
                "version": __version__,
                "description": "Upload photos, follow their segmentation live (Socket.IO `job` events in room "
                "`job:<id>` after `subscribe`), read results, browse the gallery, share read-only links. "
                'Errors are JSON: `{"error": {status, code, message}}`. Browsers are identified by a signed '
                "cookie (state-changing requests need `X-CSRF-Token` from `/api/session`); scripts use "
                "`Authorization: Bearer <token>` from `POST /api/tokens`.",
            },
            "servers": [{"url": "/"}],
            "components": {
                "schemas": SCHEMAS,
                "securitySchemes": {
                    "cookie": {"type": "apiKey", "in": "cookie", "name": "maskweb_id"},
                    "bearer": {"type": "http", "scheme": "bearer"},
                },
            },
            "security": [{"cookie": []}, {"bearer": []}],
            "paths": _mark_public(_paths()),
        }
    )
