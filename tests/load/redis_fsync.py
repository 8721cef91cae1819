"""What Redis' ``appendfsync always`` (the embedded Redis and compose's) costs next to ``everysec``.

    python tests/load/redis_fsync.py [--writes 300] [--clients 1,20] [--rounds 2]

Starts a private Redis per mode (``backend.cli.processes.PrivateRedis``, as ``maskweb run`` does, with the
mode under test) in a temporary folder and times INCRs through redis-py: each client (a greenlet) writes
``--writes`` times, one after another. Prints, per mode and client count, the round trip's p50 and p95 (ms)
and the writes per second. Compare the modes within one run: this machine's speed varies between sessions.
"""

from gevent import monkey

monkey.patch_all()  # every client is a greenlet

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS.parent), str(TESTS)]

from backend.cli.processes import PrivateRedis  # noqa: E402
from load.measures import percentile  # noqa: E402

MODES = ("always", "everysec")


def time_writes(port: int, clients: int, writes: int) -> dict:
    """``clients`` greenlets each INCR their own key ``writes`` times; round-trip p50/p95 in ms, writes/s."""
    latencies: list[float] = []

    def client(index: int) -> None:
        r = redis.Redis(port=port)
        for _ in range(writes):
            started = time.perf_counter()
            r.incr(f"fsync-probe:{index}")
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    gevent.joinall([gevent.spawn(client, i) for i in range(clients)], raise_error=True)
    wall = time.perf_counter() - began
    return {
        "p50_ms": round(1000 * percentile(latencies, 50), 3),
        "p95_ms": round(1000 * percentile(latencies, 95), 3),
        "writes_per_s": round(len(latencies) / wall),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=300, help="INCRs per client")
    parser.add_argument("--clients", default="1,20", help="comma list of concurrent client counts")
    parser.add_argument("--rounds", type=int, default=2, help="times each mode is measured, alternating")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]
    for _ in range(args.rounds):
        for mode in MODES:
            with tempfile.TemporaryDirectory(prefix="maskweb-fsync-") as folder:
                server = PrivateRedis(Path(folder), appendfsync=mode).start()
                try:
                    for clients in counts:
                        print(
                            mode,
                            clients,
                            "clients",
                            time_writes(server.port, clients, args.writes),
                            flush=True,
                        )
                finally:
                    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
