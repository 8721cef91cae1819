"""Share links the owner can see again, although the database keeps only their digests.

A link's token is HMAC-SHA256(secret key, "share-link:<job id>:<n>") for the job's n-th link (n counts revoked
links too, so the link made after "Stop sharing" is a new token). The database stores the token's SHA-256, as
for every bearer secret: a copy of the database opens nothing without the secret key. The web process holds
the key, so it can tell the owner which link is live (`share` in the job's JSON) and answer a second "Share"
with that link instead of minting another.

A link made under another secret key (the key was rotated) still works but cannot be shown again: the job's
JSON then says it is shared with `url` null, and "Share" makes a new link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.storage import repo
from backend.storage.models import Job, secret_digest


def link_token(secret_key: str, job_id: str, number: int) -> str:
    """The token of the job's ``number``-th link (0-based): 43 URL-safe characters, 256 bits."""
    mac = hmac.new(secret_key.encode(), f"share-link:{job_id}:{number}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def link_json(token: str | None) -> dict:
    """What the API says about a live link: its token, page and API addresses (all null when unknown)."""
    if token is None:
        return {"token": None, "url": None, "api_url": None}
    return {"token": token, "url": f"/s/{token}", "api_url": f"/api/shared/{token}"}


def share_state(session: Session, secret_key: str, job: Job) -> dict | None:
    """The job's live link as link_json, or None when the job is not shared."""
    live = set(repo.live_share_links(session, job.id))
    if not live:
        return None
    for number in reversed(range(repo.share_link_count(session, job.id))):
        token = link_token(secret_key, job.id, number)
        if secret_digest(token) in live:
            return link_json(token)
    return link_json(None)


def share(session: Session, secret_key: str, job: Job) -> tuple[dict, bool]:
    """The job's live link, made if there is none that can be shown; returns (link_json, created). Commits."""
    state = share_state(session, secret_key, job)
    if state is not None and state["token"] is not None:
        return state, False
    try:
        token = repo.create_share_link(
            session, job, link_token(secret_key, job.id, repo.share_link_count(session, job.id))
        )
        session.commit()
    except IntegrityError:  # another request made the same link a moment ago: answer with it
        session.rollback()
        return share_state(session, secret_key, job) or link_json(None), False
    return link_json(token), True
