"""The access matrix (issue 10, point 8): every job endpoint, shared endpoint and socket subscription, for each
of {owner, other visitor, share-link holder, revoked share-link holder, another user's API token, no identity}.
Anyone but the owner gets exactly what a job that does not exist gets (nothing leaks, not even existence);
a live share token opens read-only views of that one job, a revoked one nothing."""

from __future__ import annotations

import pytest
from webtools import Script, Visitor, complete, png

from backend.web.sockets import socketio

MISSING = "0" * 32
JOB_READS = ["", "/image", "/thumbnail", "/overlay", "/result"]
JOB_WRITES = [("post", "/cancel"), ("post", "/share"), ("delete", "/share"), ("delete", "")]
SHARED_READS = ["", "/image", "/thumbnail", "/overlay", "/result"]


@pytest.fixture
def world(app):
    owner = Visitor(app)
    (job,) = owner.upload(png(40, 30))
    complete(app, job["id"], classes=("cat",))
    live = owner.post(f"/api/jobs/{job['id']}/share").get_json()["token"]
    (other_job,) = owner.upload(png())
    revoked = owner.post(f"/api/jobs/{other_job['id']}/share").get_json()["token"]
    owner.delete(f"/api/jobs/{other_job['id']}/share")
    return {"app": app, "owner": owner, "job": job["id"], "live": live, "revoked": revoked}


class Anonymous:
    """No cookie, no token (a share-link holder is one of these, with the token in the URL)."""

    def __init__(self, app):
        self.client = app.test_client()

    def get(self, url, **kw):
        return self.client.get(url, **kw)

    def post(self, url, **kw):
        return self.client.post(url, **kw)

    def delete(self, url, **kw):
        return self.client.delete(url, **kw)


def _callers(world) -> dict:
    app = world["app"]
    return {
        "other visitor": Visitor(app),
        "share-link holder": Anonymous(app),
        "revoked share-link holder": Anonymous(app),
        "another user's API token": Script(app),
        "no identity": Anonymous(app),
    }


def _same_as_missing(caller, method: str, path: str, job: str) -> None:
    response = getattr(caller, method)(path.format(job=job))
    missing = getattr(caller, method)(path.format(job=MISSING))
    assert (response.status_code, response.get_data()) == (missing.status_code, missing.get_data()), path
    assert response.status_code in (401, 404), (path, response.status_code)


def test_http_matrix(world):
    owner, job = world["owner"], world["job"]
    for suffix in JOB_READS:
        assert owner.get(f"/api/jobs/{job}{suffix}").status_code == 200, suffix
    assert job in [j["id"] for j in owner.get("/api/jobs").get_json()["jobs"]]

    for name, caller in _callers(world).items():
        for suffix in JOB_READS:
            _same_as_missing(caller, "get", "/api/jobs/{job}" + suffix, job)
        for method, suffix in JOB_WRITES:
            _same_as_missing(caller, method, "/api/jobs/{job}" + suffix, job)
        listed = caller.get("/api/jobs")
        assert listed.status_code in (200, 401) and job not in listed.get_data(as_text=True), name

        token = world["revoked"] if name.startswith("revoked") else world["live"]
        for suffix in SHARED_READS:
            response = caller.get(f"/api/shared/{token}{suffix}")
            if name.startswith("revoked"):
                assert response.status_code == 404 and job not in response.get_data(as_text=True), suffix
            else:  # a live link is a credential for anyone holding it: read-only views of that job
                assert response.status_code == 200, (name, suffix)
        assert caller.get(f"/s/{token}").status_code == (404 if name.startswith("revoked") else 200)
        assert caller.post(f"/api/shared/{token}").status_code == 405  # never writable through a link

    assert owner.get(f"/api/jobs/{job}").get_json()["state"] == "done"  # nobody changed it


def _socket(app, caller=None, auth=None):
    headers = {}
    if isinstance(caller, Visitor) and not isinstance(caller, Script):
        headers["Cookie"] = f"maskweb_id={caller.client.get_cookie('maskweb_id').value}"
    if isinstance(caller, Script):
        auth = {"token": caller.token}
    return socketio.test_client(app, headers=headers, auth=auth)


def test_socket_matrix(world):
    app, job = world["app"], world["job"]
    owner_socket = _socket(app, world["owner"])
    assert owner_socket.emit("subscribe", {"job_id": job}, callback=True)["ok"] is True
    assert [j["id"] for j in owner_socket.emit("subscribe", {"job_ids": [job]}, callback=True)["jobs"]] == [
        job
    ]

    for name, caller in _callers(world).items():
        client = _socket(app, caller)
        refused = client.emit("subscribe", {"job_id": job}, callback=True)
        missing = client.emit("subscribe", {"job_id": MISSING}, callback=True)
        assert refused == missing and refused["ok"] is False, name
        # several at once: someone else's job is refused exactly as a missing one
        listed = client.emit("subscribe", {"job_ids": [job, MISSING]}, callback=True)
        assert listed["ok"] is True and listed["jobs"] == [], name
        assert [r["error"] for r in listed["refused"]] == [refused["error"], refused["error"]], name
        token = world["revoked"] if name.startswith("revoked") else world["live"]
        ack = client.emit("subscribe", {"share_token": token}, callback=True)
        both = client.emit("subscribe", {"share_token": token, "job_id": job}, callback=True)
        if name.startswith("revoked"):
            assert ack["ok"] is False and both["ok"] is False and job not in str(ack)
            assert not _socket(app, auth={"share_token": token}).is_connected()
        else:
            assert ack["ok"] is True and ack["job"]["id"] == job
            assert ack["job"]["urls"]["image"] == f"/api/shared/{token}/image"  # never the owner's URLs
        client.disconnect()
