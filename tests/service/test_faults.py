"""Real faults against the running stack (issue 10, point 2): Redis killed and restarted with and without its
data, the web process restarted under watching clients, the database gone for seconds, a full or read-only
data directory, a worker stopped with SIGTERM mid-job. Every job ends exactly once and nothing is lost."""

from __future__ import annotations

import threading
import time

import pytest
import socketio as socketio_client

from .faults import can_mount, restart_redis, tiny_filesystem
from .stack import FINAL_STATES, png_bytes

pytestmark = pytest.mark.slow


def _three_jobs_in_every_place(stack, user) -> list[str]:
    """One job running (held before its model stage), one dispatched (its message in the broker), one still
    waiting in the database (the user's in-flight cap is 2)."""
    stack.hold("model")
    ids = [j["id"] for j in user.upload(*(png_bytes(40, 32, seed=s) for s in (11, 12, 13)))]
    user.wait(ids[0], states=("running",), timeout_s=120)
    rows = stack.db_jobs(*ids)
    assert rows[ids[1]]["dispatched_at"] is not None and rows[ids[2]]["dispatched_at"] is None
    return ids


def _each_ran_once(stack, user, ids: list[str]) -> None:
    finals = {job_id: user.wait(job_id, timeout_s=240) for job_id in ids}
    assert {f["state"] for f in finals.values()} == {"done"}, finals
    assert {row["attempts"] for row in stack.db_jobs(*ids).values()} == {1}  # none lost, none run twice


def test_redis_killed_and_restarted_with_its_append_only_file_loses_nothing(stack):
    user = stack.user()
    ids = _three_jobs_in_every_place(stack, user)
    restart_redis(stack, keep_data=True)
    assert stack.redis().exists("maskweb:test:hold:model")  # the last write before the crash survived
    stack.release("model")
    _each_ran_once(stack, user, ids)


def test_redis_restarted_empty_re_enqueues_what_waits_in_the_database(stack):
    """Without persistence the broker's messages, the leases and the holds are gone: the reconciler sends the
    dispatched job again, the running one keeps its worker (its lease is taken back), none runs twice."""
    user = stack.user()
    ids = _three_jobs_in_every_place(stack, user)
    restart_redis(stack, keep_data=False)  # the hold went with the data: the running job goes on
    _each_ran_once(stack, user, ids)


@pytest.fixture
def web_on_a_cuttable_database(tmp_path, small_weights, small_model_config):
    """The web process alone (no worker), on PostgreSQL reached through a proxy the test can cut."""
    from testkit import require_service

    from .faults import TcpProxy
    from .stack import Stack, drop_postgres, postgres_url

    url = postgres_url()
    if url is None:
        require_service("PostgreSQL on 127.0.0.1:5432")
    proxy = TcpProxy(5432)
    try:
        proxied = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
        with Stack.start(
            tmp_path, small_weights, small_model_config, worker=False, database_url=proxied
        ) as web:
            yield web, proxy
    finally:
        proxy.close()
        drop_postgres(url)


OUTAGE_S = 10


def test_the_database_gone_for_seconds_gets_503s_then_service_recovers_without_a_restart(
    web_on_a_cuttable_database,
):
    web, proxy = web_on_a_cuttable_database
    user = web.user()
    (job,) = user.upload(png_bytes(30, 20, seed=21))
    pid = web.web.pid

    proxy.cut()
    outage_ends = time.monotonic() + OUTAGE_S
    answers = []
    while time.monotonic() < outage_ends:
        for response in (user.get(f"/api/jobs/{job['id']}"), user.get("/api/jobs")):
            assert response.status_code == 503, response.text
            answers.append(response.json()["error"])
        time.sleep(0.5)
    refused = user.post("/api/jobs", files=[("image", ("b.png", png_bytes(30, 20, seed=22), "image/png"))])
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert user.get("/healthz").status_code == 200  # the process itself is fine
    assert all(a["code"] == "database_unavailable" and "Try again" in a["message"] for a in answers)
    proxy.restore()

    deadline = time.monotonic() + 10
    while (response := user.get(f"/api/jobs/{job['id']}")).status_code != 200:
        assert time.monotonic() < deadline, f"no recovery: {response.status_code} {response.text}"
        time.sleep(0.2)
    assert response.json()["state"] == "queued"
    assert [j["id"] for j in user.get("/api/jobs").json()["jobs"]] == [
        job["id"]
    ]  # the refused upload left nothing
    assert web.web.pid == pid and web.web.poll() is None  # recovered in the same process


def test_socket_clients_reconnect_after_the_web_restarts_and_see_the_final_state(stack):
    """A watcher that reconnects subscribes again; the acknowledgement carries the job as the database has it,
    so whatever happened while the web was down is not missed."""
    user = stack.user()
    stack.hold("model")
    (job,) = user.upload(png_bytes(36, 28, seed=31))
    user.wait(job["id"], states=("running",))

    seen: list[dict] = []
    connects = threading.Semaphore(0)
    headers, auth = user.socket_auth()
    client = socketio_client.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)
    client.on("job", seen.append)

    @client.on("connect")
    def _subscribe():
        client.emit("subscribe", {"job_id": job["id"]}, callback=lambda ack: seen.append(ack["job"]))
        connects.release()

    client.connect(stack.base_url, transports=["websocket"], headers=headers, auth=auth or None)
    try:
        assert connects.acquire(timeout=20)
        from backend.cli.processes import stop_process

        stop_process(stack.web, grace_s=10)
        stack.release("model")  # the job finishes while no web process runs
        stack.start_web()
        assert connects.acquire(timeout=30), "the client did not reconnect"
        deadline = time.monotonic() + 120
        while not any(e["state"] in FINAL_STATES for e in seen):
            assert time.monotonic() < deadline, seen
            time.sleep(0.1)
    finally:
        client.disconnect()
    assert [e for e in seen if e["state"] in FINAL_STATES][-1]["state"] == "done"


@pytest.mark.skipif(
    not can_mount(), reason="mounting a small filesystem needs CAP_SYS_ADMIN (root, as in CI)"
)
@pytest.mark.parametrize("read_only", [False, True], ids=["disk-full", "read-only"])
def test_a_full_or_unwritable_data_directory_refuses_uploads_and_fails_jobs_cleanly(stack, read_only):
    code = "storage_unwritable" if read_only else "storage_full"
    user = stack.user()
    jobs_dir = stack.settings.data_dir / "jobs"

    with tiny_filesystem(jobs_dir, read_only=read_only):
        refused = user.post(
            "/api/jobs", files=[("image", ("a.png", png_bytes(30, 20, seed=41), "image/png"))]
        )
    assert refused.status_code == 507, refused.text
    assert (
        refused.json()["error"]["code"] == code and "nothing was saved" in refused.json()["error"]["message"]
    )
    assert user.get("/api/jobs").json()["jobs"] == []

    stack.hold("saving")
    (job,) = user.upload(png_bytes(30, 20, seed=42))
    with user.socket() as watcher:
        watcher.subscribe({"job_id": job["id"]})
        watcher.until(job["id"], lambda e: e["stage"] == "masks" and e["progress"] == 1.0, 120)
        with tiny_filesystem(jobs_dir / job["id"], read_only=read_only):
            stack.release("saving")
            final = watcher.until(job["id"], lambda e: e["state"] in FINAL_STATES, 120)[-1]
    assert final["state"] == "failed" and final["error_code"] == code, final
    assert "storage" in final["error"]
    assert user.get(f"/api/jobs/{job['id']}/result").status_code == 409  # nothing marked done
    assert not (jobs_dir / job["id"] / "result.json").exists()
    assert not (jobs_dir / job["id"] / "overlay.png").exists()


def test_a_worker_stopped_with_sigterm_mid_job_finishes_it_and_loses_nothing(stack):
    """Warm shutdown: the running job completes, the message the worker had reserved goes back to the queue;
    a new worker takes it. (Last in this module: it replaces the stack's worker.)"""
    import signal

    user = stack.user()
    stack.hold("masks")
    first, second = (j["id"] for j in user.upload(png_bytes(40, 30, seed=51), png_bytes(40, 30, seed=52)))
    user.wait(first, states=("running",))
    worker = stack.worker
    worker.send_signal(signal.SIGTERM)
    time.sleep(1)  # the shutdown has begun: the worker takes no new message
    stack.release("masks")
    assert user.wait(first, timeout_s=120)["state"] == "done"
    worker.wait(timeout=120)  # it exits once the job is done
    stack.worker = None
    stack.start_worker()
    assert user.wait(second, timeout_s=180)["state"] == "done"
    assert {row["attempts"] for row in stack.db_jobs(first, second).values()} == {1}
