"""maskweb as it runs on several machines, on this one: web processes behind nginx, several workers.

    with Cluster.start(root, weights, model_config, database_url, s3) as cluster:
        user = cluster.user()                      # through nginx, like a browser
        cluster.upstream_of(user)                  # which web process its requests stick to

What runs, all on 127.0.0.1 with ephemeral ports, stopped by ``stop()``:

- Redis (private), PostgreSQL (a fresh database) and an S3 bucket (moto's server): what every host shares;
- ``webs`` web processes (``maskweb web``) and ``workers`` workers (``maskweb worker`` with the test holds of
  ``worker_entry.py``), each with a data directory of its own, so nothing is shared through the local disk:
  job files go through the bucket, events and revocations through Redis;
- nginx (Debian's package) with the repository's ``deploy/nginx/maskweb.conf``, rendered by ``render_nginx``:
  the upstream lists the test's web processes, and a response header ``X-Maskweb-Upstream`` tells the tests
  which web process answered.

Each worker records the jobs it ran in Redis hash ``RAN_KEY`` (job id -> its hostname).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import requests

from backend.cli.processes import free_port, spawn, stop_process

from .stack import ROOT, START_TIMEOUT_S, Stack

NGINX_SAMPLE = ROOT / "deploy" / "nginx" / "maskweb.conf"
RAN_KEY = "maskweb:test:ran"
UPSTREAM_HEADER = "X-Maskweb-Upstream"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def render_nginx(out_dir: Path, listen_port: int, web_addresses: list[str]) -> Path:
    """A complete nginx.conf in ``out_dir`` around the repository's sample: the sample's ``server web:8000``
    line becomes one line per address of ``web_addresses``, ``listen 80`` becomes ``listen_port`` on
    127.0.0.1, and every path (pid, logs, temporary files) lies under ``out_dir``; runs as this user."""
    sample = NGINX_SAMPLE.read_text()
    servers = "\n".join(f"    server {address} max_fails=3 fail_timeout=10s;" for address in web_addresses)
    site, replaced = re.subn(r"^\s*server web:8000[^\n]*;$", servers, sample, flags=re.M)
    site, listened = re.subn(r"^(\s*)listen 80;$", rf"\1listen 127.0.0.1:{listen_port};", site, flags=re.M)
    site, headed = re.subn(
        r"^(\s*)proxy_pass http://maskweb_web;$",
        rf"\1proxy_pass http://maskweb_web;\n\1add_header {UPSTREAM_HEADER} $upstream_addr always;",
        site,
        flags=re.M,
    )
    if (replaced, listened, headed) != (1, 1, 1):
        raise ValueError(f"{NGINX_SAMPLE} no longer has the lines render_nginx replaces")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "maskweb.conf").write_text(site)
    temp = {name: out_dir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    conf = out_dir / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
daemon off;
pid {out_dir / "nginx.pid"};
error_log {out_dir / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log {out_dir / "access.log"};
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {out_dir / "maskweb.conf"};
}}
"""
    )
    return conf


def nginx_check(conf: Path) -> subprocess.CompletedProcess:
    """``nginx -t`` on ``conf`` (as this user: the error log given on the command line)."""
    return subprocess.run(
        [nginx_binary(), "-t", "-c", str(conf), "-e", str(conf.parent / "error.log")],
        capture_output=True,
        text=True,
        timeout=60,
    )


class Cluster(Stack):
    """``webs`` web processes behind nginx and ``workers`` workers around Redis, PostgreSQL and a bucket."""

    def __init__(self, root, weights, model_config, database_url: str, s3, webs: int = 2, workers: int = 2):
        self.s3 = s3
        super().__init__(
            root,
            weights,
            model_config,
            database_url=database_url,
            storage_url=f"s3://{s3.new_bucket()}/maskweb",
        )
        self.web_ports = [free_port() for _ in range(webs)]
        self.worker_count = workers
        self.proxy_port = free_port()
        self.webs: list[subprocess.Popen] = []
        self.worker_procs: list[subprocess.Popen] = []
        self.nginx: subprocess.Popen | None = None

    @classmethod
    def start(cls, root, weights, model_config, database_url, s3, **kw) -> Cluster:
        cluster = cls(root, weights, model_config, database_url, s3, **kw)
        try:
            cluster.redis_server.start()
            cluster.settings.redis_url = cluster.redis_server.url
            for index in range(len(cluster.web_ports)):
                cluster.start_web_process(index)
            for index in range(cluster.worker_count):
                cluster.start_worker_process(index)
            cluster.start_proxy()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def web_addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.web_ports]

    def process_env(self, name: str, port: int | None = None) -> dict[str, str]:
        """What every host shares (Redis, database, bucket, secret key) plus this process's own data dir."""
        env = self.env()
        env.update(self.s3.env())
        env.update(
            MASKWEB_STORAGE_URL=self.settings.storage_url,
            MASKWEB_DATA_DIR=str(self.root / name / "data"),
            MASKWEB_TRUSTED_PROXIES="1",
            MASKWEB_TEST_WORKER_NAME=name,
        )
        if port is not None:
            env["MASKWEB_PORT"] = str(port)
        return env

    def start_web_process(self, index: int) -> None:
        from backend.cli.run import web_argv

        port = self.web_ports[index]
        name = f"web{index + 1}"
        with self._log(f"{name}.log") as log:
            proc = spawn(web_argv("127.0.0.1", port, processes=1), env=self.process_env(name, port), cwd=ROOT,
                         stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self.webs.append(proc)
        self._wait(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok, proc, name, 90)

    def start_worker_process(self, index: int) -> None:
        name = f"worker{index + 1}"
        before = set(self.workers())
        argv = [sys.executable, str(Path(__file__).with_name("worker_entry.py")), "--loglevel", "WARNING"]
        with self._log(f"{name}.log") as log:
            proc = spawn(argv, env=self.process_env(name), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.worker_procs.append(proc)
        self._wait(lambda: set(self.workers()) - before, proc, name, START_TIMEOUT_S)

    def start_proxy(self) -> None:
        conf = render_nginx(self.root / "nginx", self.proxy_port, self.web_addresses())
        checked = nginx_check(conf)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused {conf}: {checked.stderr}")
        with self._log("nginx.log") as log:
            self.nginx = spawn(
                [nginx_binary(), "-c", str(conf), "-e", str(conf.parent / "error.log")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait(lambda: requests.get(self.base_url + "/healthz", timeout=2).ok, self.nginx, "nginx", 30)

    def stop(self) -> None:
        for proc in [self.nginx, *self.webs, *self.worker_procs]:
            if proc is not None:
                stop_process(proc, signal.SIGTERM, grace_s=10)
        self.nginx, self.webs, self.worker_procs = None, [], []
        super().stop()

    # --- looking inside -----------------------------------------------------------------------------------------

    def upstream_of(self, user) -> str:
        """The web process (``127.0.0.1:port``) this user's requests stick to, as nginx reports it."""
        return user.get("/api/session").headers[UPSTREAM_HEADER]

    def ran_by(self) -> dict[str, str]:
        """``{job id: name of the worker that ran it}`` (``worker1``, ``worker2``, ...)."""
        return self.redis().hgetall(RAN_KEY)
