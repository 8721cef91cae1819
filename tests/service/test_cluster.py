"""Beyond one machine, on this one: two web processes behind nginx, two workers, nothing shared on disk.

Web processes and workers each have their own data directory; job files go through an S3 bucket (moto's
server), events and revocations through Redis, rows through PostgreSQL (see ``cluster.py``). nginx is
Debian's package with the repository's ``deploy/nginx/maskweb.conf``.
"""

from __future__ import annotations

import pytest
from flask_socketio import SocketIO
from testkit import require_service

from .cluster import UPSTREAM_HEADER, Cluster, nginx_binary
from .stack import FINAL_STATES, png_bytes

STAGES = ("decode", "model", "masks", "saving")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, small_weights, small_model_config, moto_s3, new_postgres_database):
    if nginx_binary() is None:
        require_service("nginx (Debian's package: apt-get install nginx)")
    with Cluster.start(
        tmp_path_factory.mktemp("cluster"),
        small_weights,
        small_model_config,
        new_postgres_database(),
        moto_s3,
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def idle_after(cluster):
    yield
    for key in cluster.redis().scan_iter(match="maskweb:test:hold:*"):
        cluster.redis().delete(key)
    cluster.wait_idle()


def user_on(cluster: Cluster, address: str, tries: int = 40):
    """A new browser-like user whose requests nginx sends to the web process at ``address``."""
    for _ in range(tries):
        user = cluster.user()
        if cluster.upstream_of(user) == address:
            return user
    raise AssertionError(f"no new identity stuck to {address} in {tries} tries")


def running_count(cluster: Cluster, job_ids: list[str]) -> int:
    return sum(row["state"] == "running" for row in cluster.db_jobs(*job_ids).values())


def wait_until(predicate, timeout_s: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


def test_a_client_on_one_web_process_follows_both_workers_and_is_reached_by_the_other_web_process(cluster):
    """Web A holds the viewer's socket; web B handles the owner's uploads, revocation and cancellation."""
    web_a, web_b = cluster.web_addresses()
    owner, viewer = user_on(cluster, web_b), user_on(cluster, web_a)
    for user in (owner, viewer):  # every request of an identity sticks to one web process
        assert {cluster.upstream_of(user) for _ in range(5)} == {cluster.upstream_of(user)}

    cluster.hold("model")  # both jobs wait before the model, so each worker takes one
    jobs = owner.upload(png_bytes(64, 48, seed=1), png_bytes(72, 40, seed=2))
    job_ids = [job["id"] for job in jobs]
    shares = [owner.post(f"/api/jobs/{job_id}/share").json()["token"] for job_id in job_ids]
    with viewer.socket() as watcher:
        handshake = watcher.client.eio.ws.getheaders()
        assert handshake[UPSTREAM_HEADER.lower()] == web_a  # the viewer's WebSocket is held by web A
        for token in shares:
            assert watcher.subscribe({"share_token": token})["ok"]
        wait_until(lambda: running_count(cluster, job_ids) == 2)
        cluster.release("model")

        for job_id in job_ids:
            events = watcher.until(job_id, lambda e: e["state"] in FINAL_STATES)
            assert events[-1]["state"] == "done", events[-1]
            seen = [e["stage"] for e in events if e["state"] == "running"]
            # A job may have entered decode before the subscription; the hold before model makes every later
            # stage's event happen after it, so those must all arrive.
            after_hold = list(STAGES[STAGES.index("model") :])
            assert [s for s in STAGES if s in seen][-len(after_hold) :] == after_hold, seen
        assert sorted(cluster.ran_by()[job_id] for job_id in job_ids) == ["worker1", "worker2"]
        result = viewer.get(f"/api/shared/{shares[0]}/result")
        assert result.status_code == 200 and result.json()["width"] == 64  # the worker's file, via the bucket

        revoked = owner.delete(f"/api/jobs/{job_ids[0]}/share")
        assert revoked.status_code == 200 and revoked.headers[UPSTREAM_HEADER] == web_b
        watcher.wait_revoked(shares[0])
        # What a worker would send next: the evicted socket no longer gets the revoked job's events.
        emitter = SocketIO(message_queue=cluster.settings.redis_url)
        for job_id in job_ids:
            emitter.emit("job", {"id": job_id, "state": "done", "probe": True}, to=f"job:{job_id}")
        watcher.until(job_ids[1], lambda e: e.get("probe"))
        assert not [e for e in watcher.events if e["id"] == job_ids[0] and e.get("probe")]

        # A cancellation handled by web B reaches the viewer's socket on web A.
        cluster.hold("model")
        (held,) = owner.upload(png_bytes(50, 50, seed=3))
        token = owner.post(f"/api/jobs/{held['id']}/share").json()["token"]
        assert watcher.subscribe({"share_token": token})["ok"]
        wait_until(lambda: running_count(cluster, [held["id"]]) == 1)
        assert owner.post(f"/api/jobs/{held['id']}/cancel").headers[UPSTREAM_HEADER] == web_b
        cluster.release("model")
        events = watcher.until(held["id"], lambda e: e["state"] in FINAL_STATES)
        assert events[-1]["state"] == "cancelled" and events[-1]["error_code"] == "cancelled"
