"""``make load-cluster``: jobs per second and event latency through nginx, one web + one worker against two + two.

    python tests/load/cluster_run.py                         # 4 users x 6 images on each shape
    python tests/load/cluster_run.py --users 8 --images 10 --out cluster.json

Each shape runs as ``tests/service/cluster.py`` builds it (what README "Scaling out" describes): web processes
behind Debian's nginx with the repository's sample config, workers, Redis, a fresh PostgreSQL database and an
S3 bucket on moto's server, every process with a data directory of its own. The clients are greenlets in this
process (``load/players.py``): each user uploads its images at once through nginx and follows them over a
Socket.IO WebSocket through nginx to the end. Reported per shape: jobs per second (jobs / time from the first
upload to the last job done), event latency (``emitted_at`` stamped by the publisher to arrival at the client,
same machine clock), how the users spread over the web processes and the jobs over the workers; and the ratio
of the two shapes' jobs per second, measured in the same run.
"""

from gevent import monkey

monkey.patch_all()  # before anything imports socket, ssl, threading: every client is a greenlet

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS.parent), str(TESTS)]

from service.cluster import UPSTREAM_HEADER, Cluster  # noqa: E402
from service.stack import drop_postgres, png_bytes, postgres_url, write_model_config  # noqa: E402
from testkit import PARITY_DIR, MotoS3, generate_weights  # noqa: E402

from load.measures import percentile, write_report  # noqa: E402
from load.players import LoadError, Player, spawn_all  # noqa: E402
from load.run import _machine  # noqa: E402

SHAPES = ((1, 1), (2, 2))  # (web processes, workers)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def play(cluster: Cluster, users: int, images: int, timeout_s: float = 900) -> dict:
    """``users`` users upload ``images`` images each, all at once, and follow them to the end."""
    players, errors = spawn_all(users, lambda i: Player(cluster.base_url, f"user{i}"))
    if errors:
        raise LoadError(f"{len(errors)} of {users} users could not start: {errors[0]!r}")
    batches = {
        p.name: [png_bytes(160, 120, seed=n * 100 + i) for i in range(images)] for n, p in enumerate(players)
    }
    import gevent

    def upload_and_follow(player):
        player.follow(player.upload(batches[player.name]))
        player.wait_done(timeout_s)

    started = time.monotonic()
    greenlets = [gevent.spawn(upload_and_follow, p) for p in players]
    gevent.joinall(greenlets)
    failures = [g.exception for g in greenlets if g.exception is not None]
    if failures:
        raise LoadError(f"{len(failures)} users failed, e.g. {failures[0]!r}")
    elapsed = max(p.done_at for p in players) - started
    jobs = [job for p in players for job in p.final_jobs()]
    latencies = [lat for p in players for lat in p.socket.latencies()]
    spread = Counter(p.http.get(cluster.base_url + "/api/session").headers[UPSTREAM_HEADER] for p in players)
    for p in players:
        p.close()
    done = sum(j["state"] == "done" for j in jobs)
    return {
        "jobs": len(jobs),
        "jobs_done": done,
        "elapsed_s": round(elapsed, 2),
        "jobs_per_s": round(done / elapsed, 3),
        "event_latency_ms": {
            "p50": _ms(percentile(latencies, 50)),
            "p95": _ms(percentile(latencies, 95)),
            "max": _ms(max(latencies, default=None)),
            "events": len(latencies),
        },
        "users_per_web_process": dict(sorted(spread.items())),
        "jobs_per_worker": dict(sorted(Counter(cluster.ran_by().values()).items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--images", type=int, default=6, help="images per user, uploaded in one request")
    parser.add_argument("--out", type=Path, help="write the report here as JSON")
    args = parser.parse_args(argv)
    report = {"machine": _machine(), "users": args.users, "images_per_user": args.images, "shapes": {}}
    with tempfile.TemporaryDirectory(prefix="maskweb-cluster-") as tmp:
        root = Path(tmp)
        config = write_model_config(PARITY_DIR / "public", root / "small.json")
        s3 = MotoS3().start(root / "moto.log")
        try:
            for webs, workers in SHAPES:
                name = f"{webs}web-{workers}worker"
                url = postgres_url()
                if url is None:
                    print("no PostgreSQL server on 127.0.0.1:5432", file=sys.stderr)
                    return 2
                print(f"load-cluster: {name} ...", file=sys.stderr, flush=True)
                try:
                    with Cluster.start(
                        root / name, generate_weights("small"), config, url, s3, webs=webs, workers=workers
                    ) as cluster:
                        report["shapes"][name] = play(cluster, args.users, args.images)
                finally:
                    drop_postgres(url)
        finally:
            s3.stop()
    one, two = (report["shapes"][f"{w}web-{k}worker"]["jobs_per_s"] for w, k in SHAPES)
    report["jobs_per_s_ratio_2x2_over_1x1"] = round(two / one, 2)
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
