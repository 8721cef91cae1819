"""Share links: read-only access to exactly one job, for anyone holding the token, until revoked."""

from __future__ import annotations

from webtools import complete, png


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
    tokens = [visitor.post(f"/api/jobs/{job['id']}/share").get_json()["token"] for _ in range(2)]
    response = visitor.delete(f"/api/jobs/{job['id']}/share")
    assert response.status_code == 200 and response.get_json() == {"revoked": 2}
    stranger = app.test_client()
    for token in tokens:
        for suffix in ("", "/image", "/thumbnail", "/overlay", "/result"):
            response = stranger.get(f"/api/shared/{token}{suffix}")
            assert response.status_code == 404
            assert response.get_json()["error"]["code"] == "not_found"
    assert visitor.get(f"/api/jobs/{job['id']}").status_code == 200  # the job itself stays


def test_unknown_share_tokens_are_404(app):
    client = app.test_client()
    for token in ("nope", "x" * 43, "a" * 200):
        assert client.get(f"/api/shared/{token}").status_code == 404
