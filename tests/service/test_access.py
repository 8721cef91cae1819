"""Who may see what, over HTTP and over Socket.IO: owners, other users, share links."""

from __future__ import annotations

import requests

from .stack import png_bytes


def test_two_users_are_isolated(stack):
    alice, bob = stack.user(), stack.user(token=True)
    job = alice.upload(png_bytes(40, 30))[0]
    alice.wait(job["id"])

    for path in ("", "/result", "/image", "/overlay", "/thumbnail"):
        response = bob.get(f"/api/jobs/{job['id']}{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert bob.post(f"/api/jobs/{job['id']}/cancel").status_code == 404
    assert bob.delete(f"/api/jobs/{job['id']}").status_code == 404
    assert bob.post(f"/api/jobs/{job['id']}/share").status_code == 404
    assert job["id"] not in [j["id"] for j in bob.get("/api/jobs").json()["jobs"]]
    assert job["id"] in [j["id"] for j in alice.get("/api/jobs").json()["jobs"]]

    with bob.socket() as watcher:  # bob's API token in the connect auth
        ack = watcher.subscribe({"job_id": job["id"]})
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    with alice.socket() as watcher:  # alice's cookie
        ack = watcher.subscribe({"job_id": job["id"]})
    assert ack["ok"] is True and ack["job"]["state"] == "done"


def test_share_link_is_read_only_and_revocable(stack):
    owner = stack.user()
    job = owner.upload(png_bytes(50, 40))[0]
    owner.wait(job["id"])
    link = owner.post(f"/api/jobs/{job['id']}/share").json()
    token = link["token"]
    assert link["url"] == f"/s/{token}" and len(token) >= 22  # >= 128 bits, url-safe base64

    anyone = requests.Session()
    shared = anyone.get(f"{stack.base_url}/api/shared/{token}").json()
    assert shared["job"]["id"] == job["id"] and shared["result"]["width"] == 50
    assert anyone.get(f"{stack.base_url}/api/shared/{token}/overlay").headers["Content-Type"] == "image/png"
    # the token opens that one result, nothing else: not the job's own API, not changes
    assert anyone.get(f"{stack.base_url}/api/jobs/{job['id']}").status_code in (401, 404)
    assert anyone.delete(f"{stack.base_url}/api/jobs/{job['id']}").status_code in (401, 403, 404)
    stranger = stack.user()
    with stranger.socket(auth={"share_token": token}) as watcher:
        assert watcher.subscribe({"share_token": token})["ok"] is True
        assert watcher.subscribe({"job_id": job["id"]})["ok"] is False

    assert owner.delete(f"/api/jobs/{job['id']}/share").status_code == 200
    gone = anyone.get(f"{stack.base_url}/api/shared/{token}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    with stranger.socket() as watcher:
        ack = watcher.subscribe({"share_token": token})
    assert ack["ok"] is False
    assert owner.job(job["id"])["state"] == "done"  # revoking the link leaves the job alone
