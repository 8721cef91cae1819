"""The load scenarios, each against a running ``Stack`` (tests/service/stack.py: gunicorn web, Celery worker with
the small model config, private Redis, a database). Each returns a JSON-able report; ``run.py`` prints them.

- ``users``: N users each upload M images at the same moment and follow them over Socket.IO to ``done``.
- ``uploaders``: N users upload one image each at the same moment; counts refusals and errors.
- ``sockets``: N pages follow one shared job (held before the model) while HTTP requests are timed; then the
  job finishes and every page must get its ``done`` event.
- ``soak``: one user uploads ``jobs`` images in batches, each batch run to ``done``; web and worker RSS after
  the warm-up and at the end.
"""

from __future__ import annotations

import time

import gevent
import requests
from gevent.event import Event

from .measures import fairness, percentile, rss_bytes
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


def _together(players: list, action) -> list[BaseException]:
    """Run ``action(player)`` for every player, released at the same instant; returns the errors."""
    go = Event()

    def play(player):
        go.wait()
        action(player)

    greenlets = [gevent.spawn(play, p) for p in players]
    gevent.sleep(0.2)  # every greenlet is parked on the event
    go.set()
    gevent.joinall(greenlets)
    return [g.exception for g in greenlets if not g.successful()]


def users(stack, count: int = 20, images: int = 5, size=(160, 120), timeout_s: float = 900) -> dict:
    """N users x M images, all uploaded at once, followed to done."""
    before = _rss(stack)
    players, errors = spawn_all(count, lambda i: Player(stack.base_url, f"user{i}"))
    if errors:
        raise LoadError(f"{len(errors)} of {count} users could not start: {errors[0]!r}")
    batch = _images(images, size)

    def upload_and_follow(player):
        player.follow(player.upload(batch))
        player.wait_done(timeout_s)

    started = time.monotonic()
    errors = _together(players, upload_and_follow)
    elapsed = time.monotonic() - started
    jobs = [job for p in players for job in p.final_jobs()]
    acks = [a for p in players for a in p.upload_acks]
    latencies = [lat for p in players for lat in p.socket.latencies()]
    overtaken = fairness(jobs)
    report = {
        "users": count,
        "images_per_user": images,
        "image_size": list(size),
        "errors": [repr(e) for e in errors],
        "jobs": len(jobs),
        "jobs_done": sum(j["state"] == "done" for j in jobs),
        "upload_ack_ms": {"p50": _ms(percentile(acks, 50)), "p95": _ms(percentile(acks, 95))},
        "event_latency_ms": {
            "p50": _ms(percentile(latencies, 50)),
            "p95": _ms(percentile(latencies, 95)),
            "events": len(latencies),
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
