"""Several web processes behind one port (``maskweb web --processes N``): the Prometheus counters add up over all
of them, Socket.IO refuses long-polling (which would need every request of a session to reach one process), a
WebSocket in either process follows jobs, and deleting an API token signs out its sockets in every process. Real gunicorn with two gevent workers, Redis, SQLite.

Which process answers is the kernel's choice, so the tests open TCP connections until they hold one accepted
by each process (read from /proc: the server-side socket's inode among each process's open files) and then send
their requests over those.
"""

from __future__ import annotations

import http.client
import os
import re
import time
import uuid
from pathlib import Path

import pytest

from .stack import Stack, png_bytes

PROCESSES = 2


@pytest.fixture(scope="module")
def two_process_web(tmp_path_factory, small_weights, small_model_config):
    with Stack.start(
        tmp_path_factory.mktemp("two-web"), small_weights, small_model_config, web_processes=PROCESSES
    ) as running:
        yield running


def _web_processes(stack: Stack) -> list[int]:
    children = Path(f"/proc/{stack.web.pid}/task/{stack.web.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return inode
    return None


def _owner(pids: list[int], inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:  # closed meanwhile
                continue
    return None


def connection_to_each_process(stack: Stack, tries: int = 200) -> dict[int, http.client.HTTPConnection]:
    """An open keep-alive connection accepted by each web process."""
    pids, port = _web_processes(stack), stack.settings.port
    assert len(pids) == PROCESSES
    held: dict[int, http.client.HTTPConnection] = {}
    for _ in range(tries):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.connect()
        client_port = conn.sock.getsockname()[1]
        deadline = time.monotonic() + 5
        owner = None
        while owner is None and time.monotonic() < deadline:
            inode = _server_socket_inode(port, client_port)
            owner = _owner(pids, inode) if inode else None
            if owner is None:
                time.sleep(0.005)  # not accepted yet
        if owner is not None and owner not in held:
            held[owner] = conn
            if len(held) == len(pids):
                return held
        else:
            conn.close()
    raise AssertionError(f"{tries} connections did not reach every web process: {sorted(held)}")


def _request(conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def _multipart(image: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _uploads_total(metrics_text: str) -> float:
    match = re.search(r"^maskweb_uploads_total(?:\{[^}]*\})? ([0-9.e+]+)$", metrics_text, re.M)
    assert match, metrics_text[:500]
    return float(match.group(1))


def _scrape_each_process(stack: Stack) -> list[float]:
    counts = []
    for conn in connection_to_each_process(stack).values():
        status, text = _request(conn, "GET", "/metrics")
        assert status == 200
        counts.append(_uploads_total(text.decode()))
        conn.close()
    return counts


def test_every_process_reports_the_uploads_of_all_of_them(two_process_web):
    user = two_process_web.user()
    cookie = "; ".join(f"{c.name}={c.value}" for c in user.http.cookies)
    headers = {"Cookie": cookie, "X-CSRF-Token": user.http.headers["X-CSRF-Token"]}
    before = _scrape_each_process(two_process_web)
    assert len(set(before)) == 1
    # one image through each process (a connection idle for gunicorn's keep-alive of 2 s is closed: use at once)
    for index, conn in enumerate(connection_to_each_process(two_process_web).values()):
        body, content_type = _multipart(png_bytes(32, 24, seed=index))
        status, answer = _request(conn, "POST", "/api/jobs", body, {**headers, "Content-Type": content_type})
        assert status == 202, answer
        conn.close()
    assert _scrape_each_process(two_process_web) == [before[0] + PROCESSES] * PROCESSES


def _established_by_process(stack: Stack) -> dict[int, int]:
    """How many connections to the web's port each web process holds."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == stack.settings.port and fields[3] == "01":
            inodes.add(f"socket:[{fields[9]}]")
    counts = {}
    for pid in _web_processes(stack):
        links = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
        counts[pid] = sum(link in inodes for link in links)
    return counts


def _sockets_in_every_process(stack: Stack, user) -> list:
    """Sockets of ``user``, opened until every web process holds at least one."""
    baseline = _established_by_process(stack)
    watchers = []
    while not all(n > baseline[pid] for pid, n in _established_by_process(stack).items()):
        assert len(watchers) < 60, "the sockets all went to one process"
        watchers.append(user.socket())
    return watchers


def test_deleting_an_api_token_signs_out_its_sockets_in_every_process(two_process_web):
    script = two_process_web.user(token=True)
    (job,) = script.upload(png_bytes(24, 16, seed=9))
    token_id = next(t["id"] for t in script.get("/api/tokens").json()["tokens"] if t["current"])
    watchers = _sockets_in_every_process(two_process_web, script)
    assert all(w.subscribe({"job_id": job["id"]})["ok"] for w in watchers)
    assert script.delete(f"/api/tokens/{token_id}").status_code == 204
    for watcher in watchers:
        assert watcher.wait_signed_out(60)["code"] == "api_token_revoked"


def test_long_polling_is_refused_and_websockets_in_every_process_follow_jobs(two_process_web):
    status, _ = _request(
        http.client.HTTPConnection("127.0.0.1", two_process_web.settings.port, timeout=30),
        "GET",
        "/socket.io/?EIO=4&transport=polling",
    )
    assert status == 400  # a polling session could not survive its next request reaching the other process
    user = two_process_web.user()
    two_process_web.hold("decode")
    watchers = []
    try:
        (job,) = user.upload(png_bytes(40, 30, seed=5))
        watchers = _sockets_in_every_process(two_process_web, user)
        for watcher in watchers:
            assert watcher.subscribe({"job_id": job["id"]})["ok"]
    finally:
        two_process_web.release("decode")
    for watcher in watchers:
        events = watcher.until(job["id"], lambda e: e["state"] == "done", 180)
        assert events[-1]["state"] == "done"
        watcher.close()
