"""Share links: read-only access to exactly one job, for anyone holding the token, until revoked."""

from __future__ import annotations

from sqlalchemy import select
from webtools import complete, png

from backend.storage import repo
from backend.storage.models import Job, ShareLink
from backend.web import sharing
from backend.web.services import get_db


def test_a_share_link_serves_one_result_read_only_to_anyone(app, visitor):
    (job,) = visitor.upload(png(40, 30))
    (other_job,) = visitor.upload(png())
    result = complete(app, job["id"], classes=("cat",))
    created = visitor.post(f"/api/jobs/{job['id']}/share")
    assert created.status_code == 201
    link = created.get_json()
    token = link["token"]
    assert len(token) >= 43 and link["url"] == f"/s/{token}"  # >= 256 bits of base64url

    stranger = app.test_client()  # no cookie, no token
    body = stranger.get(f"/api/shared/{token}").get_json()
    assert body["result"] == result
    assert body["job"]["state"] == "done" and body["job"]["classes"] == ["cat"]
    assert body["job"]["urls"] == {
        kind: f"/api/shared/{token}/{kind}" for kind in ("image", "thumbnail", "overlay", "result")
    }
    for kind, mimetype in (("image", "image/png"), ("thumbnail", "image/jpeg"), ("overlay", "image/png")):
        response = stranger.get(f"/api/shared/{token}/{kind}")
        assert response.status_code == 200 and response.mimetype == mimetype
    assert stranger.get(f"/api/shared/{token}/result").get_json() == result

    # nothing else: not the owner's other jobs, not changes
    assert stranger.get(f"/api/jobs/{job['id']}").status_code == 404
    assert stranger.get(f"/api/jobs/{other_job['id']}").status_code == 404
    assert stranger.post(f"/api/shared/{token}").status_code == 405
    assert stranger.delete(f"/api/shared/{token}").status_code == 405
    assert stranger.post(f"/api/jobs/{job['id']}/cancel").status_code in (401, 404)


def test_a_job_shared_before_it_is_done_shows_its_progress(visitor):
    (job,) = visitor.upload(png())
    token = visitor.post(f"/api/jobs/{job['id']}/share").get_json()["token"]
    body = visitor.get(f"/api/shared/{token}").get_json()
    assert body["result"] is None and body["job"]["state"] == "queued" and body["job"]["queue_position"] == 1
    assert body["job"]["urls"]["overlay"] is None
    assert visitor.get(f"/api/shared/{token}/result").status_code == 409


def test_revoking_ends_every_link_of_the_job(app, visitor):
    (job,) = visitor.upload(png())
    complete(app, job["id"])
    tokens = [visitor.post(f"/api/jobs/{job['id']}/share").get_json()["token"]]
    with app.app_context():  # a second live link, as made before links were derived from the secret key
        db = get_db()
        tokens.append(repo.create_share_link(db, db.get(Job, job["id"])))
        db.commit()
    response = visitor.delete(f"/api/jobs/{job['id']}/share")
    assert response.status_code == 200 and response.get_json() == {"revoked": 2}
    stranger = app.test_client()
    for token in tokens:
        for suffix in ("", "/image", "/thumbnail", "/overlay", "/result"):
            response = stranger.get(f"/api/shared/{token}{suffix}")
            assert response.status_code == 404
            assert response.get_json()["error"]["code"] == "not_found"
    assert visitor.get(f"/api/jobs/{job['id']}").status_code == 200  # the job itself stays


def test_sharing_is_a_state_of_the_job_its_owner_can_read(app, visitor):
    (job,) = visitor.upload(png())
    url = f"/api/jobs/{job['id']}"
    assert visitor.get(url).get_json()["share"] is None

    made = visitor.post(url + "/share")
    assert made.status_code == 201
    link = made.get_json()
    assert visitor.get(url).get_json()["share"] == link
    # Sharing again answers the live link instead of minting another.
    again = visitor.post(url + "/share")
    assert again.status_code == 200 and again.get_json() == link
    with app.app_context():
        assert repo.share_link_count(get_db(), job["id"]) == 1
        stored = get_db().scalars(select(ShareLink.token_sha256)).all()
    assert link["token"] not in stored  # the database keeps the digest only

    visitor.delete(url + "/share")
    assert visitor.get(url).get_json()["share"] is None
    renewed = visitor.post(url + "/share")
    assert renewed.status_code == 201 and renewed.get_json()["token"] != link["token"]
    assert app.test_client().get(link["api_url"]).status_code == 404
    assert app.test_client().get(renewed.get_json()["api_url"]).status_code == 200


def test_a_link_made_under_another_secret_key_shows_as_shared_without_its_address(app, visitor):
    (job,) = visitor.upload(png())
    with app.app_context():
        db = get_db()
        repo.create_share_link(db, db.get(Job, job["id"]), sharing.link_token("an-old-key", job["id"], 0))
        db.commit()
    assert visitor.get(f"/api/jobs/{job['id']}").get_json()["share"] == {
        "token": None,
        "url": None,
        "api_url": None,
    }
    made = visitor.post(f"/api/jobs/{job['id']}/share")
    assert made.status_code == 201
    assert visitor.get(f"/api/jobs/{job['id']}").get_json()["share"] == made.get_json()


def test_unknown_share_tokens_are_404(app):
    client = app.test_client()
    for token in ("nope", "x" * 43, "a" * 200):
        assert client.get(f"/api/shared/{token}").status_code == 404
