"""``make load``: play many users against a real maskweb on this machine and report the figures.

    python tests/load/run.py                       # every scenario at full size (several minutes)
    python tests/load/run.py --bounded             # the CI sizes (tests/load/test_load.py)
    python tests/load/run.py --scenarios users --users 20 --images 5 --out load.json

It starts its own stack (tests/service/stack.py: the production ``maskweb web`` and ``maskweb worker`` commands,
a private Redis, SQLite or ``--database postgres``), with the small model config on generated weights, so the
run needs no downloads; the clients are greenlets in this process (gevent), talking HTTP and Socket.IO over
WebSocket to 127.0.0.1 only. The report goes to stdout (and ``--out`` as JSON).
"""

from gevent import monkey

monkey.patch_all()  # before anything imports socket, ssl, threading: every client is a greenlet

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS.parent), str(TESTS)]

from service.stack import Stack, drop_postgres, postgres_url, write_model_config  # noqa: E402
from testkit import PARITY_DIR, generate_weights  # noqa: E402

from load import scenarios  # noqa: E402
from load.measures import write_report  # noqa: E402

FULL = {
    "users": 20, "images": 5, "arrival_s": 2.0, "uploaders": 50, "sockets": 1000, "soak_jobs": 1000,
    "queued_jobs": 10000, "burst_rounds": 5,
}  # fmt: skip
BOUNDED = {
    "users": 3, "images": 2, "arrival_s": 2.0, "uploaders": 20, "sockets": 200, "soak_jobs": 0, "queued_jobs": 0,
    "burst_rounds": 1,
}  # fmt: skip
ALL = ("users", "uploaders", "bursts", "sockets", "soak", "queue", "decode")


def _machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        "?",
    )
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    import os

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bounded", action="store_true", help="the CI sizes: a few users, 200 sockets, no soak"
    )
    parser.add_argument("--scenarios", default=",".join(ALL), help=f"comma list of {', '.join(ALL)}")
    parser.add_argument("--users", type=int)
    parser.add_argument("--images", type=int)
    parser.add_argument(
        "--arrival-s",
        type=float,
        help="users: the window in which the users arrive, at random (seconds; 0: all at the same instant)",
    )
    parser.add_argument("--uploaders", type=int)
    parser.add_argument("--sockets", type=int)
    parser.add_argument(
        "--burst-rounds", type=int, help="rounds of each kind of burst (bursts: --users requests at once)"
    )
    parser.add_argument("--soak-jobs", type=int)
    parser.add_argument(
        "--queued-jobs", type=int, help="jobs waiting (10 per user) for the queue-cost scenario"
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--web-processes", type=int, default=1, help="gunicorn workers of the web (MASKWEB_WEB_PROCESSES)"
    )
    parser.add_argument("--out", type=Path, help="write the report here as JSON")
    args = parser.parse_args(argv)
    sizes = dict(BOUNDED if args.bounded else FULL)
    for key in sizes:
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if args.bounded and "soak" in chosen:
        chosen.remove("soak")
    _raise_fd_limit()

    report = {
        "machine": _machine(),
        "sizes": sizes,
        "database": args.database,
        "web_processes": args.web_processes,
        "scenarios": {},
    }
    database_url = postgres_url() if args.database == "postgres" else None
    if args.database == "postgres" and database_url is None:
        print("no PostgreSQL server on 127.0.0.1:5432", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="maskweb-load-") as tmp:
        root = Path(tmp)
        config = write_model_config(PARITY_DIR / "public", root / "small.json")
        started = time.monotonic()
        try:
            with Stack.start(
                root / "stack",
                generate_weights("small"),
                config,
                database_url=database_url,
                web_processes=args.web_processes,
            ) as stack:
                report["stack_start_s"] = round(time.monotonic() - started, 1)
                for name in chosen:
                    print(f"load: {name} ...", file=sys.stderr, flush=True)
                    began = time.monotonic()
                    if name == "users":
                        result = scenarios.users(stack, sizes["users"], sizes["images"], sizes["arrival_s"])
                    elif name == "uploaders":
                        result = scenarios.uploaders(stack, sizes["uploaders"])
                    elif name == "bursts":
                        result = scenarios.bursts(
                            stack, sizes["users"], sizes["images"], rounds=sizes["burst_rounds"]
                        )
                    elif name == "sockets":
                        result = scenarios.sockets(stack, sizes["sockets"])
                    elif name == "soak" and sizes["soak_jobs"]:
                        result = scenarios.soak(stack, sizes["soak_jobs"])
                    elif name == "queue" and sizes["queued_jobs"]:
                        result = scenarios.queue_cost(stack, users=sizes["queued_jobs"] // 10, per_user=10)
                    elif name == "decode" and not args.bounded:
                        result = scenarios.decode_memory(stack)
                    else:
                        continue
                    result["scenario_s"] = round(time.monotonic() - began, 1)
                    report["scenarios"][name] = result
                    print(
                        json.dumps({name: result}), file=sys.stderr, flush=True
                    )  # kept if a later one fails
                    stack.wait_idle()
        finally:
            if database_url:
                drop_postgres(database_url)
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
