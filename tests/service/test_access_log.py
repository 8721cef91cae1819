"""Share tokens never reach the web server's access log (issue 10, point 5)."""

from __future__ import annotations

import time

from .stack import png_bytes


def test_share_tokens_are_redacted_from_the_access_log(stack):
    owner = stack.user()
    (job,) = owner.upload(png_bytes(32, 24, seed=7))
    owner.wait(job["id"])
    token = owner.post(f"/api/jobs/{job['id']}/share").json()["token"]
    stranger = stack.user()
    referer = {"Referer": f"{stack.base_url}/s/{token}"}
    assert stranger.get(f"/s/{token}").status_code == 200
    assert stranger.get(f"/api/shared/{token}/thumbnail?x=1", headers=referer).status_code == 200
    log = stack.logs / "web.log"
    deadline = time.monotonic() + 10  # gunicorn writes the line after the response
    while "/api/shared/<redacted>/thumbnail" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the request never reached the access log"
        time.sleep(0.1)
    text = log.read_text(errors="replace")
    assert token not in text
    assert "GET /s/<redacted>" in text
