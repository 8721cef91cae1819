"""Security headers on every response; shared files are never kept by a browser (issue 10, points 5-6)."""

from __future__ import annotations

from webtools import complete, png


def test_every_response_carries_the_security_headers(app, visitor):
    (job,) = visitor.upload(png())
    for url in ("/", "/gallery", f"/jobs/{job['id']}", "/api/session", f"/api/jobs/{job['id']}/image",
                "/api/jobs/" + "0" * 32, "/healthz", "/no-such-page"):  # fmt: skip
        headers = visitor.get(url).headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, url
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_shared_pages_and_files_are_not_stored_and_stop_working_once_revoked(app, visitor):
    (job,) = visitor.upload(png())
    complete(app, job["id"])
    token = visitor.post(f"/api/jobs/{job['id']}/share").get_json()["token"]
    stranger = app.test_client()
    urls = [f"/s/{token}"] + [f"/api/shared/{token}{kind}" for kind in ("", "/image", "/thumbnail", "/overlay",
                                                                         "/result")]  # fmt: skip
    for url in urls:
        response = stranger.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
        assert "ETag" not in response.headers and "Last-Modified" not in response.headers
        assert response.headers["Referrer-Policy"] == "no-referrer"
    # the owner's own files may be cached by the owner's browser, never by a shared cache
    assert visitor.get(f"/api/jobs/{job['id']}/image").headers["Cache-Control"].startswith("private")

    visitor.delete(f"/api/jobs/{job['id']}/share")
    for url in urls:
        response = stranger.get(url, headers={"If-None-Match": "*", "If-Modified-Since": "Thu, 01 Jan 2037"})
        assert response.status_code == 404, url
