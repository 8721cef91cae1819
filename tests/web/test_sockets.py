"""Socket.IO over a real WebSocket, with events arriving through the Redis message queue as the worker sends
them (a write-only ``SocketIO(message_queue=...)``): identity by cookie, API token or share token; the
subscribe acknowledgement carries the database's state; rooms are per job and private."""

from __future__ import annotations

import queue as queue_module
import threading

import pytest
import socketio as socketio_client
from flask_socketio import SocketIO
from webtools import Visitor, complete, png
from werkzeug.serving import make_server

from backend.web import create_app

EVENT_TIMEOUT_S = 30  # a bound for a hung test, not a performance assertion


@pytest.fixture
def server(redis_settings, queue):
    app = create_app(redis_settings, submit=queue.submit, cancel=queue.cancel)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    clients = []

    def connect(cookie: str | None = None, auth: dict | None = None):
        client = socketio_client.Client(reconnection=False)
        events, revoked, signed_out = queue_module.Queue(), queue_module.Queue(), queue_module.Queue()
        disconnected = threading.Event()
        client.on("job", events.put)
        client.on("revoked", revoked.put)
        client.on("signed_out", signed_out.put)
        client.on("disconnect", lambda *_reason: disconnected.set())
        headers = {"Cookie": f"maskweb_id={cookie}"} if cookie else {}
        client.connect(
            f"http://127.0.0.1:{httpd.server_port}", headers=headers, auth=auth, transports=["websocket"],
            wait_timeout=EVENT_TIMEOUT_S,
        )  # fmt: skip
        clients.append(client)
        client.events, client.revoked, client.signed_out = events, revoked, signed_out
        client.disconnected = disconnected
        return client

    app.connect = connect
    yield app
    for client in clients:
        if client.eio.ws is not None:
            client.eio.ws.shutdown()  # drop the TCP connection: no 3 s wait for a closing handshake
        client.eio.disconnect(abort=True)
    httpd.shutdown()
    thread.join(10)


def cookie_of(visitor: Visitor) -> str:
    return visitor.client.get_cookie("maskweb_id").value


def publish(redis_url: str, payload: dict) -> None:
    """What the worker does: emit to the job's room through the message queue, from outside the web."""
    SocketIO(message_queue=redis_url).emit("job", payload, to=f"job:{payload['id']}")


def test_owner_subscribes_and_follows_events_over_websocket(server, redis_settings):
    owner = Visitor(server)
    (job,) = owner.upload(png())
    client = server.connect(cookie=cookie_of(owner))
    assert client.transport() == "websocket"
    ack = client.call("subscribe", {"job_id": job["id"]}, timeout=EVENT_TIMEOUT_S)
    assert ack["ok"] is True
    # The job as GET /api/jobs/{id} says it, less `share` (the owner's own, never sent to a room).
    state = owner.get(f"/api/jobs/{job['id']}").get_json()
    assert ack["job"] == {key: value for key, value in state.items() if key != "share"}
    event = dict(ack["job"], state="running", stage="model", progress=0.4, queue_position=None)
    publish(redis_settings.redis_url, event)
    assert client.events.get(timeout=EVENT_TIMEOUT_S) == event


def test_a_stranger_cannot_subscribe_and_gets_no_events(server, redis_settings):
    owner, stranger = Visitor(server), Visitor(server)
    (job,) = owner.upload(png())
    (own,) = stranger.upload(png())
    client = server.connect(cookie=cookie_of(stranger))
    ack = client.call("subscribe", {"job_id": job["id"]}, timeout=EVENT_TIMEOUT_S)
    assert ack == {"ok": False, "error": {"code": "not_found", "message": ack["error"]["message"]}}
    assert client.call("subscribe", {"job_id": own["id"]}, timeout=EVENT_TIMEOUT_S)["ok"] is True
    publish(redis_settings.redis_url, {"id": job["id"], "state": "done"})
    publish(redis_settings.redis_url, {"id": own["id"], "state": "running"})
    # events go through one channel in order: the stranger's own event arriving proves the other never will
    assert client.events.get(timeout=EVENT_TIMEOUT_S) == {"id": own["id"], "state": "running"}
    assert client.events.empty()


def test_unsubscribe_leaves_the_room(server, redis_settings):
    owner = Visitor(server)
    first, second = owner.upload(png(), png())
    client = server.connect(cookie=cookie_of(owner))
    for job in (first, second):
        assert client.call("subscribe", {"job_id": job["id"]}, timeout=EVENT_TIMEOUT_S)["ok"]
    assert client.call("unsubscribe", {"job_id": first["id"]}, timeout=EVENT_TIMEOUT_S) == {"ok": True}
    publish(redis_settings.redis_url, {"id": first["id"], "state": "done"})
    publish(redis_settings.redis_url, {"id": second["id"], "state": "done"})
    assert client.events.get(timeout=EVENT_TIMEOUT_S) == {"id": second["id"], "state": "done"}
    assert client.events.empty()


def test_several_jobs_in_one_subscribe_each_as_the_api_says_and_anothers_refused_alone(
    server, redis_settings
):
    owner, stranger = Visitor(server), Visitor(server)
    first, second, third = owner.upload(png(), png(), png())
    (theirs,) = stranger.upload(png())
    client = server.connect(cookie=cookie_of(owner))
    ids = [third["id"], theirs["id"], first["id"], "not-an-id", second["id"], first["id"]]
    ack = client.call("subscribe", {"job_ids": ids}, timeout=EVENT_TIMEOUT_S)
    assert ack["ok"] is True
    # each of the owner's jobs once, in the order asked, as GET /api/jobs/{id} says it (less `share`)
    expected = [owner.get(f"/api/jobs/{job['id']}").get_json() for job in (third, first, second)]
    assert ack["jobs"] == [{k: v for k, v in state.items() if k != "share"} for state in expected]
    assert [(r["job_id"], r["error"]["code"]) for r in ack["refused"]] == [
        (theirs["id"], "not_found"), ("not-an-id", "not_found"),
    ]  # fmt: skip
    for job in (first, theirs, second):
        publish(redis_settings.redis_url, {"id": job["id"], "state": "done"})
    # one channel, in order: the second job's event arriving proves the stranger's never will
    assert client.events.get(timeout=EVENT_TIMEOUT_S) == {"id": first["id"], "state": "done"}
    assert client.events.get(timeout=EVENT_TIMEOUT_S) == {"id": second["id"], "state": "done"}
    assert client.events.empty()
    # and they are left the same way
    assert client.call("unsubscribe", {"job_ids": [first["id"], second["id"]]}, timeout=EVENT_TIMEOUT_S) == {
        "ok": True
    }
    publish(redis_settings.redis_url, {"id": first["id"], "state": "failed"})
    publish(redis_settings.redis_url, {"id": third["id"], "state": "done"})
    assert client.events.get(timeout=EVENT_TIMEOUT_S) == {"id": third["id"], "state": "done"}
    assert client.events.empty()


@pytest.mark.parametrize(
    "job_ids", [[], "abc", [1, 2], ["a"] * 101, None], ids=["empty", "string", "numbers", "101", "null"]
)
def test_a_malformed_job_list_is_refused_with_its_limit(server, job_ids):
    owner = Visitor(server)
    client = server.connect(cookie=cookie_of(owner))
    for event in ("subscribe", "unsubscribe"):
        ack = client.call(event, {"job_ids": job_ids}, timeout=EVENT_TIMEOUT_S)
        assert ack["ok"] is False and ack["error"]["code"] == "bad_request"
        assert "1 to 100 job ids" in ack["error"]["message"]


def test_api_token_and_share_token_identities(server, redis_settings):
    owner = Visitor(server)
    (job,) = owner.upload(png())
    complete(server, job["id"])
    token = owner.post("/api/tokens").get_json()["token"]
    scripted = server.connect(auth={"token": token})
    assert (
        scripted.call("subscribe", {"job_id": job["id"]}, timeout=EVENT_TIMEOUT_S)["job"]["state"] == "done"
    )

    share = owner.post(f"/api/jobs/{job['id']}/share").get_json()["token"]
    anonymous = server.connect()
    assert anonymous.call("subscribe", {"job_id": job["id"]}, timeout=EVENT_TIMEOUT_S)["ok"] is False
    ack = anonymous.call("subscribe", {"share_token": share}, timeout=EVENT_TIMEOUT_S)
    assert ack["ok"] is True and ack["job"]["urls"]["result"] == f"/api/shared/{share}/result"
    with_share_auth = server.connect(auth={"share_token": share})
    assert with_share_auth.call("subscribe", {"share_token": share}, timeout=EVENT_TIMEOUT_S)["ok"] is True

    owner.delete(f"/api/jobs/{job['id']}/share")
    ack = anonymous.call("subscribe", {"share_token": share}, timeout=EVENT_TIMEOUT_S)
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    bad = anonymous.call("subscribe", {"nothing": 1}, timeout=EVENT_TIMEOUT_S)
    assert bad["ok"] is False and bad["error"]["code"] == "bad_request"


def _still_served(client, job_id: str) -> bool:
    return client.call("subscribe", {"job_id": job_id}, timeout=EVENT_TIMEOUT_S)["ok"] is True


def test_deleting_an_api_token_signs_out_the_sockets_it_opened(server):
    owner = Visitor(server)
    (job,) = owner.upload(png())
    first, second = (owner.post("/api/tokens").get_json() for _ in range(2))
    by_first = server.connect(auth={"token": first["token"]})
    by_second = server.connect(auth={"token": second["token"]})
    by_cookie = server.connect(cookie=cookie_of(owner))
    assert _still_served(by_first, job["id"])

    assert owner.delete(f"/api/tokens/{first['id']}").status_code == 204
    signed_out = by_first.signed_out.get(timeout=EVENT_TIMEOUT_S)
    assert signed_out["code"] == "api_token_revoked" and "deleted" in signed_out["message"]
    assert by_first.disconnected.wait(EVENT_TIMEOUT_S)
    # The owner's other credentials keep their sockets.
    assert _still_served(by_second, job["id"]) and _still_served(by_cookie, job["id"])
    assert by_second.signed_out.empty() and by_cookie.signed_out.empty()
    with pytest.raises(socketio_client.exceptions.ConnectionError):
        server.connect(auth={"token": first["token"]})


def test_rotating_the_cookie_signs_out_the_sockets_of_older_cookies(server):
    owner, other = Visitor(server), Visitor(server)
    (job,) = owner.upload(png())
    (others,) = other.upload(png())
    stolen = cookie_of(owner)
    thief = server.connect(cookie=stolen)
    bystander = server.connect(cookie=cookie_of(other))
    assert _still_served(thief, job["id"])

    assert owner.post("/api/session/rotate").status_code == 200
    assert thief.signed_out.get(timeout=EVENT_TIMEOUT_S)["code"] == "cookie_rotated"
    assert thief.disconnected.wait(EVENT_TIMEOUT_S)
    assert _still_served(server.connect(cookie=cookie_of(owner)), job["id"])  # the new cookie connects
    assert _still_served(bystander, others["id"]) and bystander.signed_out.empty()  # other users untouched


@pytest.mark.parametrize("auth", [{"token": "mw_not-a-token"}, {"share_token": "revoked-or-unknown"}])
def test_invalid_credentials_refuse_the_connection(server, auth):
    with pytest.raises(socketio_client.exceptions.ConnectionError):
        server.connect(auth=auth)


def test_a_revoked_share_subscription_can_still_be_left(server, redis_settings):
    owner = Visitor(server)
    first, second = owner.upload(png(), png())
    share = owner.post(f"/api/jobs/{first['id']}/share").get_json()["token"]
    other_share = owner.post(f"/api/jobs/{second['id']}/share").get_json()["token"]
    client = server.connect()
    for token in (share, other_share):
        assert client.call("subscribe", {"share_token": token}, timeout=EVENT_TIMEOUT_S)["ok"]
    owner.delete(f"/api/jobs/{first['id']}/share")
    assert client.call("unsubscribe", {"share_token": share}, timeout=EVENT_TIMEOUT_S) == {"ok": True}
    publish(redis_settings.redis_url, {"id": first["id"], "state": "done"})
    publish(redis_settings.redis_url, {"id": second["id"], "state": "done"})
    assert client.events.get(timeout=EVENT_TIMEOUT_S) == {"id": second["id"], "state": "done"}
    assert client.events.empty()


def test_revoking_a_link_stops_its_live_events(server, redis_settings):
    owner = Visitor(server)
    first, second = owner.upload(png(), png())
    share = owner.post(f"/api/jobs/{first['id']}/share").get_json()["token"]
    other_share = owner.post(f"/api/jobs/{second['id']}/share").get_json()["token"]
    viewer = server.connect()
    for token in (share, other_share):
        assert viewer.call("subscribe", {"share_token": token}, timeout=EVENT_TIMEOUT_S)["ok"]
    watching_owner = server.connect(cookie=cookie_of(owner))
    assert watching_owner.call("subscribe", {"job_id": first["id"]}, timeout=EVENT_TIMEOUT_S)["ok"]

    owner.delete(f"/api/jobs/{first['id']}/share")
    assert viewer.revoked.get(timeout=EVENT_TIMEOUT_S) == {"share_token": share}
    publish(redis_settings.redis_url, {"id": first["id"], "state": "done"})
    publish(redis_settings.redis_url, {"id": second["id"], "state": "done"})
    assert viewer.events.get(timeout=EVENT_TIMEOUT_S) == {"id": second["id"], "state": "done"}
    assert viewer.events.empty()
    assert watching_owner.events.get(timeout=EVENT_TIMEOUT_S) == {"id": first["id"], "state": "done"}


def test_revoking_evicts_a_socket_that_sent_a_job_id_along_with_the_share_token(server, redis_settings):
    owner = Visitor(server)
    (job,) = owner.upload(png())
    share = owner.post(f"/api/jobs/{job['id']}/share").get_json()["token"]
    viewer = server.connect()
    ack = viewer.call("subscribe", {"share_token": share, "job_id": job["id"]}, timeout=EVENT_TIMEOUT_S)
    assert ack["ok"] is True

    owner.delete(f"/api/jobs/{job['id']}/share")
    assert viewer.revoked.get(timeout=EVENT_TIMEOUT_S) == {"share_token": share}
    _only_the_marker_arrives(viewer, redis_settings, owner, job["id"])


def test_a_socket_subscribing_while_the_link_is_revoked_gets_no_further_event(
    server, redis_settings, monkeypatch
):
    """The revocation commits and evicts the link's sockets between the subscription's access check and its
    joining the room: the subscription must not survive it."""
    from backend.web import sockets

    owner = Visitor(server)
    (job,) = owner.upload(png())
    share = owner.post(f"/api/jobs/{job['id']}/share").get_json()["token"]
    resolve = sockets._resolve

    def resolve_then_revoke(data):
        answer = resolve(data)
        assert owner.delete(f"/api/jobs/{job['id']}/share").status_code == 200
        return answer

    monkeypatch.setattr(sockets, "_resolve", resolve_then_revoke)
    viewer = server.connect()
    ack = viewer.call("subscribe", {"share_token": share}, timeout=EVENT_TIMEOUT_S)
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    _only_the_marker_arrives(viewer, redis_settings, owner, job["id"])


def _only_the_marker_arrives(viewer, redis_settings, owner, revoked_job_id: str) -> None:
    """Publish an event for the revoked job, then one for a job the viewer may follow: events go through one
    channel in order, so the second arriving alone proves the first never will."""
    (marker,) = owner.upload(png())
    marker_share = owner.post(f"/api/jobs/{marker['id']}/share").get_json()["token"]
    assert viewer.call("subscribe", {"share_token": marker_share}, timeout=EVENT_TIMEOUT_S)["ok"]
    publish(redis_settings.redis_url, {"id": revoked_job_id, "state": "done"})
    publish(redis_settings.redis_url, {"id": marker["id"], "state": "done"})
    assert viewer.events.get(timeout=EVENT_TIMEOUT_S) == {"id": marker["id"], "state": "done"}
    assert viewer.events.empty()
