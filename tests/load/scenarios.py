"""The load scenarios, each against a running ``Stack`` (tests/service/stack.py: gunicorn web, Celery worker with
the small model config, private Redis, a database). Each returns a JSON-able report; ``run.py`` prints them.

- ``users``: N users each upload M images, arriving at random within a few seconds (or all at the same instant),
  and follow them over Socket.IO to ``done`` (after a warm-up of a few uploads).
- ``uploaders``: N users upload one image each at the same moment; counts refusals and errors.
- ``sockets``: N pages follow one shared job (held before the model) while HTTP requests are timed; then the
  job finishes and every page must get its ``done`` event.
- ``bursts``: what a burst of N simultaneous requests costs the web, for a bare identified request and for
  uploads of one and of M images: each one's acknowledgement and the web's CPU per request.
- ``soak``: one user uploads ``jobs`` images in batches, each batch run to ``done``; web and worker RSS after
  the warm-up and at the end.
"""

from __future__ import annotations

import random
import time

import gevent
import requests
from gevent.event import Event

from .measures import cpu_seconds, fairness, percentile, rss_bytes
from .players import LoadError, Player, Watcher, spawn_all

MB = 1024 * 1024


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _rss(stack) -> dict:
    return {
        "web_mb": round(rss_bytes(stack.web.pid) / MB, 1),
        "worker_mb": round(rss_bytes(stack.worker.pid) / MB, 1),
    }


def _images(count: int, size: tuple[int, int], seed: int = 0) -> list[bytes]:
    from service.stack import png_bytes

    return [png_bytes(*size, seed=seed + i) for i in range(count)]


def arrival_offsets(count: int, arrival_s: float, seed: int = 0) -> list[float]:
    """When each of ``count`` users arrives, in seconds from the start, earliest first: drawn at random (seeded)
    in ``[0, arrival_s]``, which are the arrival times of a Poisson stream that brings ``count`` users in that
    window; all 0 (the same instant) when ``arrival_s`` is 0."""
    if arrival_s <= 0:
        return [0.0] * count
    rng = random.Random(seed)
    return sorted(rng.uniform(0.0, arrival_s) for _ in range(count))


def _together(players: list, action, arrival_s: float = 0.0, seed: int = 0) -> list[BaseException]:
    """Run ``action(player)`` for every player, each at its ``arrival_offsets`` moment (by default all released
    at the same instant); returns the errors."""
    go = Event()

    def play(player, offset):
        go.wait()
        if offset:
            gevent.sleep(offset)
        action(player)

    offsets = arrival_offsets(len(players), arrival_s, seed)
    greenlets = [gevent.spawn(play, p, offset) for p, offset in zip(players, offsets, strict=True)]
    gevent.sleep(0.2)  # every greenlet is parked on the event
    go.set()
    gevent.joinall(greenlets)
    return [g.exception for g in greenlets if not g.successful()]


def _warm_up(stack, size) -> None:
    """A few uploads (two per web process, each on its own connection), followed to done: the measured burst
    then meets a server as it runs, not one still importing and connecting on its first requests."""
    players = [Player(stack.base_url, f"warm-up{i}") for i in range(2 * stack.settings.web_processes)]
    for player in players:
        player.follow(player.upload(_images(1, size, seed=99)))
    for player in players:
        player.wait_done(300)
        player.close()


def users(
    stack, count: int = 20, images: int = 5, arrival_s: float = 2.0, size=(160, 120), timeout_s: float = 900
) -> dict:
    """N users x M images followed to done (after ``_warm_up``): each user, its page open and its socket
    connected, sends its M photos at a moment of its own, at random within ``arrival_s`` seconds (0: all at the
    same instant), as one request, the way the upload page sends a selection (up to five photos a request)."""
    _warm_up(stack, size)
    before = _rss(stack)
    players, errors = spawn_all(count, lambda i: Player(stack.base_url, f"user{i}"))
    if errors:
        raise LoadError(f"{len(errors)} of {count} users could not start: {errors[0]!r}")
    batch = _images(images, size)

    def upload_and_follow(player):
        player.follow(player.upload(batch))
        player.wait_done(timeout_s)

    started = time.monotonic()
    errors = _together(players, upload_and_follow, arrival_s)
    elapsed = time.monotonic() - started
    jobs = [job for p in players for job in p.final_jobs()]
    acks = [a for p in players for a in p.upload_acks]
    latencies = [lat for p in players for lat in p.socket.latencies()]
    overtaken = fairness(jobs)
    report = {
        "users": count,
        "images_per_user": images,
        "arrival_s": arrival_s,
        "image_size": list(size),
        "errors": [repr(e) for e in errors],
        "jobs": len(jobs),
        "jobs_done": sum(j["state"] == "done" for j in jobs),
        "upload_ack_ms": {"p50": _ms(percentile(acks, 50)), "p95": _ms(percentile(acks, 95))},
        "event_latency_ms": {
            "p50": _ms(percentile(latencies, 50)),
            "p95": _ms(percentile(latencies, 95)),
            "events": len(latencies),
            "out_of_order": sum(p.socket.out_of_order for p in players),  # dropped, as the page drops them
        },
        "completion_s": {p.name: round(p.done_at - p.first_upload_at, 2) for p in players if p.done_at},
        "fairness": {
            "worst_overtaken": max(overtaken.values(), default=0),
            "promised_at_most": stack.settings.max_inflight_per_user * (count - 1),
            "per_user": overtaken,
        },
        "elapsed_s": round(elapsed, 1),
        "rss_before": before,
        "rss_after": _rss(stack),
    }
    for p in players:
        p.close()
    return report


def uploaders(stack, count: int = 50, size=(160, 120)) -> dict:
    """N users upload one image each at the same instant."""
    players, errors = spawn_all(count, lambda i: Player(stack.base_url, f"up{i}", socket=False))
    if errors:
        raise LoadError(f"{len(errors)} of {count} uploaders could not start: {errors[0]!r}")
    image = _images(1, size, seed=3)
    errors = _together(players, lambda p: p.upload(image))
    acks = [a for p in players for a in p.upload_acks]
    for p in players:  # the jobs are not the point here: clear the queue for the next scenario
        for job in p.jobs:
            p.http.delete(f"{stack.base_url}/api/jobs/{job['id']}", timeout=60)
    return {
        "uploaders": count,
        "accepted": sum(len(p.jobs) for p in players),
        "errors": [repr(e) for e in errors],
        "upload_ack_ms": {"p50": _ms(percentile(acks, 50)), "p95": _ms(percentile(acks, 95))},
    }


def bursts(stack, count: int = 20, images: int = 5, rounds: int = 5, size=(160, 120)) -> dict:
    """How a burst of ``count`` requests arriving at the same instant is answered, for three kinds of request:
    ``session`` (GET /api/session by a known user: identity and JSON, the stack's floor), ``upload_1`` and
    ``upload_<images>`` (POST /api/jobs with one and with ``images`` images). Each kind is played ``rounds``
    times by fresh users without sockets, after ``_warm_up``; between rounds the jobs are deleted and the queue
    left empty, so every round meets an idle server.

    Per kind: the acknowledgement's p50 and p95 over all rounds, the median of the rounds' p95, and the web
    processes' CPU (user + system) per request, counted over each round until its last answer (a dispatcher
    round that starts after the burst is not in it). ``count`` requests of ``cpu_ms_per_request``
    on one process take at least their product: on a machine where that is over the target, no queueing fix
    meets it."""
    _warm_up(stack, size)
    batch = _images(images, size)
    kinds = {
        "session": None,
        "upload_1": batch[:1],
        f"upload_{images}": batch,
    }
    report = {"requests_per_burst": count, "rounds": rounds, "image_size": list(size), "kinds": {}}
    for kind, files in kinds.items():
        acks, round_p95, cpu_used, errors = [], [], 0.0, []
        for n in range(rounds):
            prefix = f"{kind}-{n}"
            players, failed = spawn_all(
                count, lambda i, prefix=prefix: Player(stack.base_url, f"{prefix}-{i}", socket=False)
            )
            errors += failed
            timed: list[float] = []

            def request(player, files=files, timed=timed):
                if files is None:
                    timed.append(player.read_session())
                else:
                    player.upload(files)
                    timed.append(player.upload_acks[-1])

            before = cpu_seconds(stack.web.pid)
            errors += _together(players, request)
            cpu_used += cpu_seconds(stack.web.pid) - before
            acks += timed
            if timed:
                round_p95.append(percentile(timed, 95))
            for p in players:
                for job in p.jobs:
                    p.http.delete(f"{stack.base_url}/api/jobs/{job['id']}", timeout=60)
                p.close()
            stack.wait_idle()
        report["kinds"][kind] = {
            "ack_ms": {"p50": _ms(percentile(acks, 50)), "p95": _ms(percentile(acks, 95))},
            "ack_p95_ms_median_of_rounds": _ms(sorted(round_p95)[len(round_p95) // 2]) if round_p95 else None,
            "cpu_ms_per_request": round(1000 * cpu_used / max(1, len(acks)), 2),
            "answered": len(acks),
            "errors": [repr(e) for e in errors[:5]],
        }
    return report


def _time_http(base_url: str, owner: Player, requests_count: int, gap_s: float = 0.02) -> list[float]:
    """Time ``requests_count`` plain HTTP requests (status, the owner's gallery and job) one after another."""
    plain = requests.Session()
    paths = ["/api/status", "/api/jobs", f"/api/jobs/{owner.jobs[0]['id']}"]
    times = []
    for i in range(requests_count):
        path = paths[i % len(paths)]
        client = plain if path == "/api/status" else owner.http
        started = time.perf_counter()
        response = client.get(base_url + path, timeout=60)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise LoadError(f"GET {path} answered {response.status_code} with the sockets held")
        gevent.sleep(gap_s)
    return times


def sockets(stack, count: int = 1000, http_requests: int = 300, timeout_s: float = 300) -> dict:
    """N pages follow one shared job while HTTP is timed; then every page must see it finish."""
    owner = Player(stack.base_url, "owner")
    stack.hold("model")  # the job waits before the model until every page follows it
    try:
        (job,) = owner.upload(_images(1, (160, 120), seed=5))
        token = owner.share(job["id"])
        idle_http = _time_http(stack.base_url, owner, 60)
        before = _rss(stack)
        started = time.monotonic()
        watchers, errors = spawn_all(count, lambda i: Watcher(stack.base_url, token))
        connect_s = time.monotonic() - started
        held_http = _time_http(stack.base_url, owner, http_requests)
        held = _rss(stack)
    finally:
        stack.release("model")
    missing = []
    for w in watchers:
        try:
            w.wait_final([job["id"]], timeout_s)
        except LoadError:
            missing.append(w)
    latencies = [lat for w in watchers for jid, state, lat in w.events if state == "done" and lat is not None]
    report = {
        "sockets": count,
        "connected": len(watchers),
        "connect_errors": [repr(e) for e in errors[:5]],
        "connect_s": round(connect_s, 1),
        "http_ms_idle": {"p50": _ms(percentile(idle_http, 50)), "p95": _ms(percentile(idle_http, 95))},
        "http_ms_held": {
            "p50": _ms(percentile(held_http, 50)),
            "p95": _ms(percentile(held_http, 95)),
            "max": _ms(max(held_http)),
            "requests": len(held_http),
        },
        "done_event_received": len(watchers) - len(missing),
        "done_event_latency_ms": {
            "p50": _ms(percentile(latencies, 50)),
            "p95": _ms(percentile(latencies, 95)),
        },
        "rss_before": before,
        "rss_with_sockets": held,
    }
    spawn_all(len(watchers), lambda i: watchers[i].close())
    owner.close()
    return report


def soak(stack, jobs: int = 1000, batch: int = 10, warmup: int = 100, timeout_s: float = 600) -> dict:
    """``jobs`` images in batches of ``batch``, each batch followed to done; RSS after warm-up and at the end."""
    player = Player(stack.base_url, "soak")
    images = _images(batch, (160, 120), seed=7)
    samples = []
    started = time.monotonic()
    after_warmup = None
    while len(player.jobs) < jobs:
        player.follow(player.upload(images))
        player.wait_done(timeout_s)
        if after_warmup is None and len(player.jobs) >= warmup:
            after_warmup = _rss(stack)
        samples.append({"jobs": len(player.jobs), **_rss(stack)})
    end = _rss(stack)
    states = [state for state in player.socket.final.values()]

    def growth(key):
        return round(100 * (end[key] - after_warmup[key]) / after_warmup[key], 1)

    report = {
        "jobs": len(player.jobs),
        "done": states.count("done"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "rss_after_warmup": after_warmup,
        "rss_end": end,
        "growth_pct": {"web": growth("web_mb"), "worker": growth("worker_mb")},
        "samples": samples[:: max(1, len(samples) // 20)],
    }
    player.close()
    return report


def seed_queue(settings, users: int, per_user: int) -> list[str]:
    """``users`` x ``per_user`` waiting jobs straight into the database (no files: they never get to run).
    Returns the users' ids."""
    from datetime import timedelta

    from sqlalchemy import insert

    from backend.storage.db import make_engine, session_scope
    from backend.storage.models import QUEUED, Job, User, new_id, utcnow

    engine = make_engine(settings.database_url)
    user_ids = [new_id() for _ in range(users)]
    start = utcnow()
    rows = [
        {"id": new_id(), "user_id": u, "state": QUEUED, "stage": "waiting", "progress": 0.0, "filename": "seed.png",
         "created_at": start + timedelta(milliseconds=i * users + n), "attempts": 0, "cancel_requested": False}
        for n, u in enumerate(user_ids)
        for i in range(per_user)
    ]  # fmt: skip
    with session_scope(engine) as db:
        db.execute(insert(User), [{"id": u, "created_at": start} for u in user_ids])
        for chunk in range(0, len(rows), 2000):
            db.execute(insert(Job), rows[chunk : chunk + 2000])
    engine.dispose()
    return user_ids


def _timed(action, count: int) -> dict:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return {"p50": _ms(percentile(times, 50)), "p95": _ms(percentile(times, 95)), "n": count}


def _reads_during_rounds(player: Player, job_url: str, image: list[bytes], uploads: int) -> dict:
    """The player's job read again and again on a connection of its own while ``player`` uploads ``uploads``
    times, half a second apart: each upload starts a dispatcher round in the web, which runs on the same event
    loop as the reads. p50, p95 and the slowest read: how long a page's request can wait while a round runs."""
    times: list[float] = []
    stop = Event()

    def read():
        http = requests.Session()
        http.cookies.update(player.http.cookies)  # the player's identity: its own job
        while not stop.is_set():
            started = time.perf_counter()
            http.get(job_url, timeout=60).raise_for_status()
            times.append(time.perf_counter() - started)
        http.close()

    reader = gevent.spawn(read)
    for _ in range(uploads):
        player.upload(image)
        gevent.sleep(0.5)  # a round starts 20 ms after the upload and lasts a few hundred ms at most
    stop.set()
    reader.join()
    return {
        "p50": _ms(percentile(times, 50)),
        "p95": _ms(percentile(times, 95)),
        "max": _ms(max(times)),
        "n": len(times),
    }


def queue_cost(stack, users: int = 1000, per_user: int = 10, repeats: int = 30) -> dict:
    """With ``users`` x ``per_user`` jobs waiting: the cost of an upload, a gallery page, a job read, a socket
    subscribe, and a dispatcher round; job reads while the web runs rounds of its own
    (``_reads_during_rounds``); and, for comparison, one full read of the queue's order (what every upload,
    list and subscribe paid before positions were kept by the dispatcher)."""
    from sqlalchemy import update

    from backend.jobs import dispatch
    from backend.storage.db import make_engine, session_scope
    from backend.storage.models import CANCELLED, QUEUED, Job
    from backend.storage.queue_order import queue_positions

    stack.hold("decode")  # the worker takes one job and keeps it: the queue stays as seeded while we measure
    seeded = seed_queue(stack.settings, users, per_user)
    engine = make_engine(stack.settings.database_url)
    try:
        rounds = _timed(lambda: dispatch.pump(stack.settings), 5)
        with session_scope(engine) as db:
            full_read = _timed(lambda: queue_positions(db), 5)
        player = Player(stack.base_url, "queue")
        image = _images(1, (160, 120), seed=11)
        upload = _timed(lambda: player.upload(image), repeats // 3)
        gallery = _timed(
            lambda: player.http.get(f"{stack.base_url}/api/jobs", timeout=60).raise_for_status(), repeats
        )
        job_url = f"{stack.base_url}/api/jobs/{player.jobs[-1]['id']}"
        read = _timed(lambda: player.http.get(job_url, timeout=60).raise_for_status(), repeats)
        subscribe = _timed(lambda: player.socket.subscribe({"job_id": player.jobs[-1]["id"]}), repeats)
        during_rounds = _reads_during_rounds(player, job_url, image, uploads=5)
        position = player.http.get(job_url, timeout=60).json()["queue_position"]
        player.close()
    finally:
        with session_scope(engine) as db:
            db.execute(
                update(Job)
                .where(Job.user_id.in_(seeded), Job.state == QUEUED)
                .values(state=CANCELLED, stage=None)
            )
        engine.dispose()
        stack.release("decode")
    return {
        "queued_jobs": users * per_user,
        "users": users,
        "dispatcher_round_ms": rounds,
        "full_queue_read_ms": full_read,
        "upload_ms": upload,
        "gallery_ms": gallery,
        "job_read_ms": read,
        "subscribe_ms": subscribe,
        "job_read_during_rounds_ms": during_rounds,
        "last_upload_position": position,
    }


def _peak_rss_mb(pid: int) -> float:
    """VmHWM (the most resident memory the process ever had) of ``pid``, in MB."""
    from pathlib import Path

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise LoadError(f"no VmHWM for process {pid}")


def _web_worker_pids(stack) -> list[int]:
    """The gunicorn workers (the processes that decode) under the web's master."""
    from pathlib import Path

    children = (
        (Path("/proc") / str(stack.web.pid) / "task" / str(stack.web.pid) / "children").read_text().split()
    )
    return [int(pid) for pid in children]


def _worst_files(megapixels: int = 40) -> dict[str, bytes]:
    """A few-KB 16-bit greyscale PNG and a 32-bit float TIFF (deflate) of ``megapixels``, both nearly blank."""
    import io

    import numpy as np
    from PIL import Image

    width = 8000
    height = megapixels * 1_000_000 // width
    files = {}
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width), 30000, dtype=np.uint16)).save(buf, "PNG")
    files["png16"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width), 0.5, dtype=np.float32)).save(
        buf, "TIFF", compression="tiff_adobe_deflate"
    )
    files["tiff32"] = buf.getvalue()
    return files


def decode_memory(stack, many: int = 100) -> dict:
    """Peak RSS of a web process while it decodes the worst files: a 16-bit 40 MP PNG, a 32-bit float 40 MP
    TIFF, then ``many`` such PNGs in one request (the highest peak of the web's processes: each request is
    decoded by the one that took it). The jobs are deleted at once (the worker need not run them)."""
    files = _worst_files()
    pids = _web_worker_pids(stack)
    player = Player(stack.base_url, "decoder", socket=False)
    report = {"file_kb": {k: round(len(v) / 1024, 1) for k, v in files.items()}, "peak_rss_mb": {}}
    report["peak_rss_mb"]["before"] = max(_peak_rss_mb(pid) for pid in pids)
    steps = [
        ("png16_40mp", [files["png16"]]),
        ("tiff32_40mp", [files["tiff32"]]),
        (f"{many}_png16", [files["png16"]] * many),
    ]
    for name, batch in steps:
        started = time.monotonic()
        response = player.http.post(
            stack.base_url + "/api/jobs",
            files=[("image", (f"{i}.img", data, "application/octet-stream")) for i, data in enumerate(batch)],
            timeout=1800,
        )
        if response.status_code != 202:
            raise LoadError(f"{name}: {response.status_code} {response.text[:300]}")
        report["peak_rss_mb"][name] = max(_peak_rss_mb(pid) for pid in pids)
        report.setdefault("seconds", {})[name] = round(time.monotonic() - started, 1)
        for job in response.json()["jobs"]:
            player.http.delete(f"{stack.base_url}/api/jobs/{job['id']}", timeout=60)
    report["current_rss_mb"] = round(max(rss_bytes(pid) for pid in pids) / MB, 1)
    return report
