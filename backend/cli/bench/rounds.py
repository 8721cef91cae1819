"""Contenders in their own processes, timed in alternating rounds.

Each contender is built in a fresh spawned process (so its peak memory is its own and the frameworks do not
share thread pools), warmed up (one network call and one whole job: graphs are traced and compiled then), and
then driven over a pipe: one message per timed call. ``alternate`` runs the rounds: in each round every
contender runs the network once and the whole job once, one contender at a time, so all of them see the same
machine (a busy neighbour slows every contender of that round, not just one) and the ratios hold even when the
absolute seconds do not.

Failure modes: a contender that cannot be built (a missing peer, too little memory) reports ``unavailable``
with its error line and is left out; the others still run. A contender process that dies mid-run is reported
the same way.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .contenders import Spec, build, decode

MODES = ("network", "job")


@dataclass
class Timings:
    """Seconds per timed call (one call = one batch) for one contender and mode."""

    batch_seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    detections: list[int] = field(default_factory=list)


@dataclass
class Outcome:
    """One contender at one batch size: what it is, its timings per mode, or why it did not run."""

    spec: Spec
    description: dict = field(default_factory=dict)
    timings: dict[str, Timings] = field(default_factory=dict)
    build_s: float = 0.0
    warmup_s: float = 0.0
    peak_rss_mib: float = 0.0
    unavailable: str | None = None


class Contender:
    """The parent's handle on one contender process."""

    def __init__(self, spec: Spec, paths: list[Path]):
        context = multiprocessing.get_context("spawn")
        self.outcome = Outcome(spec)
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, spec, [str(p) for p in paths]), daemon=True
        )
        self.process.start()
        child.close()

    def ready(self) -> bool:
        reply = self._answer()
        if reply is None:
            return False
        _, self.outcome.description, self.outcome.build_s, self.outcome.warmup_s = reply
        return True

    def run(self, mode: str) -> bool:
        self.conn.send(mode)
        reply = self._answer()
        if reply is None:
            return False
        _, wall, cpu, detections = reply
        timings = self.outcome.timings.setdefault(mode, Timings())
        timings.batch_seconds.append(wall)
        timings.cpu_seconds.append(cpu)
        timings.detections.append(detections)
        return True

    def stop(self) -> None:
        if self.process.is_alive() and self.outcome.unavailable is None:
            try:
                self.conn.send("stop")
                reply = self._receive()
                if reply is not None:
                    self.outcome.peak_rss_mib = reply[1]
            except (BrokenPipeError, OSError):
                pass
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def _answer(self):
        """The child's reply, or None when it could not go on (``outcome.unavailable`` says why)."""
        reply = self._receive()
        if reply is not None and reply[0] == "unavailable":
            self.outcome.unavailable = reply[1]
            return None
        return reply

    def _receive(self):
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            code = self.process.exitcode
            self.outcome.unavailable = f"its process died (exit status {code}; out of memory?)"
            return None


def alternate(specs: list[Spec], paths: list[Path], repeat: int, progress=print) -> list[Outcome]:
    """Build every contender of ``specs`` (in parallel), then ``repeat`` rounds; returns their outcomes."""
    contenders = [Contender(spec, paths) for spec in specs]
    try:
        running = [c for c in contenders if c.ready()]
        for round_number in range(1, repeat + 1):
            started = time.perf_counter()
            for c in running:
                for mode in MODES:
                    if c.outcome.unavailable is None:
                        c.run(mode)
            running = [c for c in running if c.outcome.unavailable is None]
            progress(f"  round {round_number}/{repeat}: {time.perf_counter() - started:.0f} s")
    finally:
        for c in contenders:
            c.stop()
    return [c.outcome for c in contenders]


def _serve(conn, spec: Spec, paths: list[str]) -> None:
    """The contender process: build, warm up, then answer timed calls until "stop"."""
    try:
        started = time.perf_counter()
        contender = build(spec)
        build_s = time.perf_counter() - started
        files = [Path(p) for p in paths]
        contender.prepare([decode(p) for p in files])
        out = Path(tempfile.mkdtemp(prefix="maskweb-bench-out-"))
        started = time.perf_counter()
        contender.network()
        contender.job(files, out)
        conn.send(("ready", contender.describe(), build_s, time.perf_counter() - started))
    except Exception as exc:  # a peer that cannot run here is reported, not fatal to the bench
        conn.send(("unavailable", _error_line(exc)))
        return
    while True:
        mode = conn.recv()
        if mode == "stop":
            conn.send(("stopped", _peak_rss_mib()))
            return
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            detections = contender.network() if mode == "network" else contender.job(files, out)
            conn.send(("timed", time.perf_counter() - wall, time.process_time() - cpu, detections))
        except Exception as exc:
            conn.send(("unavailable", _error_line(exc)))
            return


def _error_line(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    place = f" ({Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{place}".splitlines()[0][:400]


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
