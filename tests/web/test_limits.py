"""Limits a caller cannot dodge by changing identity: new identities and uploads per address, behind trusted
proxies, with counters shared by web processes through Redis; every refusal a 429 that says which limit and when."""

from __future__ import annotations

from webtools import Visitor, png

from backend.web import create_app


def _app(settings, queue):
    return create_app(settings, submit=queue.submit, cancel=queue.cancel)


def _assert_limited(response, limit: str):
    assert response.status_code == 429
    error = response.get_json()["error"]
    assert error["code"] == "rate_limited" and error["limit"] == limit
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 60 and error["retry_after_s"] == wait
    assert error["retry_at"].endswith("Z") and f"Try again in {wait} s" in error["message"]
    return error


def test_new_identities_are_limited_per_address(settings, queue):
    settings.identity_rate_limit = "3 per minute"
    app = _app(settings, queue)
    for _ in range(3):
        Visitor(app, address="10.0.0.1")
    fresh = app.test_client()
    fresh.environ_base["REMOTE_ADDR"] = "10.0.0.1"
    error = _assert_limited(fresh.get("/api/session"), "new_identities_per_address")
    assert "3 per 1 minute" in error["message"]
    _assert_limited(fresh.post("/api/tokens"), "new_identities_per_address")  # scripts mint identities too
    Visitor(app, address="10.0.0.2")  # another address has its own allowance
    # a known identity from the limited address is not affected
    returning = app.test_client()
    returning.environ_base["REMOTE_ADDR"] = "10.0.0.1"
    returning.set_cookie("maskweb_id", fresh_cookie(app, "10.0.0.3"))
    assert returning.get("/api/session").status_code == 200


def fresh_cookie(app, address: str) -> str:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    client.get("/api/session")
    return client.get_cookie("maskweb_id").value


def _new_visitor(app, forwarded_for: str):
    """GET /api/session without a cookie (a new identity) through a proxy at 127.0.0.1."""
    return app.test_client().get("/api/session", headers={"X-Forwarded-For": forwarded_for})


def test_forwarded_for_counts_only_behind_trusted_proxies(settings, queue):
    settings.identity_rate_limit = "2 per minute"
    direct = _app(settings, queue)  # no trusted proxy: a client's own X-Forwarded-For changes nothing
    statuses = [_new_visitor(direct, f"198.51.100.{i}").status_code for i in range(3)]
    assert statuses == [200, 200, 429]

    settings.trusted_proxies = 1
    proxied = _app(settings, queue)
    for i in range(3):  # three clients behind the proxy, each with its own allowance
        assert _new_visitor(proxied, f"203.0.113.{i}").status_code == 200
    # a client prepending a forged address is still counted by the address the proxy saw
    assert _new_visitor(proxied, "192.0.2.99, 203.0.113.0").status_code == 200
    _assert_limited(_new_visitor(proxied, "192.0.2.98, 203.0.113.0"), "new_identities_per_address")


def test_uploads_are_limited_per_address_across_identities(settings, queue):
    settings.address_upload_rate_limit = "3 per minute"
    app = _app(settings, queue)
    visitors = [Visitor(app, address="10.0.0.7") for _ in range(4)]
    for visitor in visitors[:3]:
        visitor.upload(png())
    body = visitors[3].upload(png(), expect=429)
    assert body["error"]["limit"] == "uploads_per_address"
    Visitor(app, address="10.0.0.8").upload(png())


def test_limits_hold_across_web_processes_through_redis(redis_settings, queue):
    redis_settings.identity_rate_limit = "3 per minute"
    one, two = _app(redis_settings, queue), _app(redis_settings, queue)  # two web processes, one Redis
    Visitor(one, address="10.1.0.1")
    Visitor(two, address="10.1.0.1")
    Visitor(one, address="10.1.0.1")
    client = two.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.1.0.1"
    _assert_limited(client.get("/api/session"), "new_identities_per_address")
