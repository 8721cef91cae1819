"""Identity cookie, CSRF, bearer tokens, and users kept apart."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import delete, event, select
from webtools import Visitor, png

from backend.storage.db import session_scope
from backend.storage.models import ApiToken, Job, User


def test_first_visit_gets_a_signed_httponly_lax_long_lived_cookie(app):
    client = app.test_client()
    response = client.get("/api/session")
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("maskweb_id=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert max_age >= 180 * 24 * 3600
    body = response.get_json()
    assert len(body["user_id"]) == 32 and body["csrf_token"]
    # the same identity afterwards, and no new cookie
    again = client.get("/api/session")
    assert again.get_json()["user_id"] == body["user_id"]
    assert "Set-Cookie" not in again.headers
    with session_scope(app.extensions["maskweb"].engine) as db:
        assert db.get(User, body["user_id"]) is not None


def test_a_tampered_cookie_is_a_new_visitor(app, visitor):
    client = app.test_client()
    client.set_cookie("maskweb_id", f"{visitor.user_id}.forged-signature")
    body = client.get("/api/session").get_json()
    assert body["user_id"] != visitor.user_id


def test_cookie_requests_that_change_state_need_the_csrf_header(app, visitor):
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": Visitor(app).csrf}):
        response = visitor.client.post("/api/tokens", headers=headers)
        assert response.status_code == 403
        error = response.get_json()["error"]
        assert error["code"] == "csrf_failed" and "X-CSRF-Token" in error["message"]
    job = visitor.upload(png())[0]
    assert visitor.client.delete(f"/api/jobs/{job['id']}").status_code == 403
    assert visitor.client.post(f"/api/jobs/{job['id']}/cancel").status_code == 403
    assert visitor.post("/api/tokens").status_code == 201  # with the right header


def test_upload_without_any_identity_is_refused(app):
    client = app.test_client()
    response = client.post("/api/jobs", data={}, content_type="multipart/form-data")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthenticated"


def test_bearer_tokens_need_no_csrf_and_are_stored_only_as_sha256(app, script):
    job = script.upload(png())[0]
    assert script.get(f"/api/jobs/{job['id']}").status_code == 200
    assert script.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    with session_scope(app.extensions["maskweb"].engine) as db:
        rows = db.scalars(select(ApiToken).where(ApiToken.user_id == script.user_id)).all()
        assert [r.token_sha256 for r in rows] == [hashlib.sha256(script.token.encode()).hexdigest()]
        assert rows[0].last_used_at is not None


def test_a_cookie_user_can_make_a_token_for_itself(app, visitor):
    job = visitor.upload(png())[0]
    token = visitor.post("/api/tokens").get_json()["token"]
    client = app.test_client()
    response = client.get(f"/api/jobs/{job['id']}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_an_unknown_bearer_token_is_401_not_a_fallback_to_the_cookie(app, visitor):
    job = visitor.upload(png())[0]
    response = visitor.client.get(f"/api/jobs/{job['id']}", headers={"Authorization": "Bearer mw_nope"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_token"


def test_two_users_are_isolated(app, visitor, other_visitor, script):
    job = visitor.upload(png())[0]
    url = f"/api/jobs/{job['id']}"
    missing = "/api/jobs/" + "0" * 32
    for stranger in (other_visitor, script):
        for suffix in ("", "/image", "/thumbnail", "/result", "/overlay"):
            response = stranger.get(url + suffix)
            assert response.status_code == 404
            # the same answer as for a job that does not exist: existence does not leak
            assert response.get_json() == stranger.get(missing + suffix).get_json()
        assert stranger.post(url + "/cancel").status_code == 404
        assert stranger.post(url + "/share").status_code == 404
        assert stranger.delete(url + "/share").status_code == 404
        assert stranger.delete(url).status_code == 404
        assert stranger.get("/api/jobs").get_json()["jobs"] == []
    assert visitor.get(url).get_json()["state"] == "queued"
    assert [j["id"] for j in visitor.get("/api/jobs").get_json()["jobs"]] == [job["id"]]


def test_the_cookie_is_secure_when_configured(settings, queue):
    from backend.web import create_app

    settings.cookie_secure = True
    app = create_app(settings, submit=queue.submit, cancel=queue.cancel)
    assert "Secure" in app.test_client().get("/api/session").headers["Set-Cookie"]


def test_api_tokens_can_be_listed_and_revoked_by_their_owner_only(app, visitor, script):
    made = visitor.post("/api/tokens").get_json()
    second, token_id = made["token"], made["id"]
    bearer = {"Authorization": f"Bearer {second}"}
    listed = visitor.client.get("/api/tokens", headers=bearer).get_json()["tokens"]
    assert [(t["id"], t["current"]) for t in listed] == [(token_id, True)]  # the id POST answered names it
    assert listed[0]["created_at"] and listed[0]["last_used_at"] and "token" not in listed[0]
    mine = visitor.get("/api/tokens").get_json()["tokens"]
    assert [t["id"] for t in mine] == [token_id] and mine[0]["current"] is False

    # another user's token cannot be seen or revoked (the same 404 as for no such token)
    assert script.get("/api/tokens").get_json()["tokens"][0]["id"] != token_id
    assert script.delete(f"/api/tokens/{token_id}").status_code == 404
    assert visitor.client.get("/api/jobs", headers=bearer).status_code == 200

    assert visitor.delete(f"/api/tokens/{token_id}").status_code == 204
    response = visitor.client.get("/api/jobs", headers=bearer)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_token"
    assert visitor.get("/api/tokens").get_json()["tokens"] == []
    assert app.test_client().get("/api/tokens").status_code == 401  # nobody: nothing to list


def test_the_identity_cookie_carries_its_issue_time(app):
    from itsdangerous import URLSafeSerializer

    before = time.time()
    client = app.test_client()
    user_id = client.get("/api/session").get_json()["user_id"]
    value = client.get_cookie("maskweb_id").value
    payload = URLSafeSerializer("test-secret-key", salt="maskweb-identity").loads(value)
    assert payload["u"] == user_id and before - 1 <= payload["iat"] <= time.time() + 1


def test_rotating_the_cookie_keeps_the_user_and_refuses_every_older_cookie(app, visitor):
    (job,) = visitor.upload(png())
    old = visitor.client.get_cookie("maskweb_id").value
    response = visitor.post("/api/session/rotate")
    assert response.status_code == 200 and response.get_json()["user_id"] == visitor.user_id
    new = visitor.client.get_cookie("maskweb_id").value
    assert new != old
    assert visitor.get(f"/api/jobs/{job['id']}").status_code == 200  # the new cookie works

    thief = app.test_client()
    thief.set_cookie("maskweb_id", old)
    assert thief.get(f"/api/jobs/{job['id']}").status_code == 404
    assert thief.get("/api/session").get_json()["user_id"] != visitor.user_id  # a new visitor, not the user

    for headers in ({}, {"X-CSRF-Token": "wrong"}):  # rotation is state-changing: CSRF applies
        assert visitor.client.post("/api/session/rotate", headers=headers).status_code == 403


def test_the_cookie_is_secure_whenever_the_request_came_over_https(app):
    direct = app.test_client().get("/api/session", base_url="https://maskweb.example")
    assert "Secure" in direct.headers["Set-Cookie"]
    proxied = app.test_client().get("/api/session", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in proxied.headers["Set-Cookie"]
    plain = app.test_client().get("/api/session")
    assert "Secure" not in plain.headers["Set-Cookie"]


def _users_reads(app, request) -> int:
    """How many statements that read the ``users`` table ``request()`` runs."""
    engine, seen = app.extensions["maskweb"].engine, []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM users" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        request()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return len(seen)


def test_a_known_visitors_row_is_read_once_per_request_and_made_again_if_it_is_gone(app, visitor):
    # the identity check (rate limits, CSRF) already read the row: the request does not look for it again
    assert _users_reads(app, lambda: visitor.get("/api/session")) == 1
    assert _users_reads(app, lambda: visitor.upload(png())) == 1
    # a database reset lost the row: the still-valid cookie keeps its user and the row is made again
    user_id = visitor.get("/api/session").get_json()["user_id"]
    with session_scope(app.extensions["maskweb"].engine) as db:
        db.execute(delete(Job))
        db.execute(delete(User).where(User.id == user_id))
    (job,) = visitor.upload(png())
    assert visitor.get("/api/session").get_json()["user_id"] == user_id
    assert visitor.get(f"/api/jobs/{job['id']}").status_code == 200
