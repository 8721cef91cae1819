"""The deployment files: docker-compose.yml against the compose specification and what it must declare, the
Dockerfile's targets, and the sample nginx config checked by ``nginx -t``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML  # installed with check-jsonschema
from testkit import require_service

from backend.cli.processes import free_port

from .cluster import nginx_binary, nginx_check, render_nginx

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(sys.executable).with_name("check-jsonschema")


def test_compose_file_validates_against_the_compose_specification():
    proc = subprocess.run(
        [str(CHECK), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _compose() -> dict:
    return YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())


def test_compose_declares_the_services_the_app_needs():
    services = _compose()["services"]
    assert {"redis", "postgres", "web", "nginx", "worker", "worker-cpu"} <= set(services)
    assert "redis" in str(services["redis"]["volumes"]) and "appendonly" in " ".join(
        services["redis"]["command"]
    )
    assert services["postgres"]["volumes"]
    gpu = services["worker"]
    assert gpu["environment"]["KERAS_BACKEND"] == "jax" and gpu["build"]["target"] == "gpu"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert (
        services["worker-cpu"]["profiles"] == ["cpu"] and services["worker-cpu"]["build"]["target"] == "app"
    )
    for name in ("web", "worker", "worker-cpu"):
        env = services[name]["environment"]
        assert env["REDIS_URL"].startswith("redis://redis:") and env["DATABASE_URL"].startswith("postgresql")


def test_every_service_has_a_healthcheck_and_scaled_ones_claim_no_host_port():
    services = _compose()["services"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in ("web", "worker", "worker-cpu"):  # `docker compose up --scale NAME=N`
        assert "ports" not in services[name] and "container_name" not in services[name], name
    nginx = services["nginx"]
    assert nginx["ports"] == ["8000:80"] and nginx["depends_on"]["web"]["condition"] == "service_healthy"
    assert "./deploy/nginx/maskweb.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert services["web"]["environment"]["MASKWEB_TRUSTED_PROXIES"] == "1"


def test_one_dockerfile_builds_the_targets_compose_names():
    stages = re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), flags=re.M)
    targets = {
        service["build"]["target"] for service in _compose()["services"].values() if "build" in service
    }
    assert targets == {"app", "gpu"} and targets <= set(stages)


def test_the_sample_nginx_config_passes_nginx_t(tmp_path):
    if nginx_binary() is None:
        require_service("nginx (Debian's package: apt-get install nginx)")
    # The compose file's upstream host `web` resolves only inside Docker's network: point it here instead.
    conf = render_nginx(tmp_path, free_port(), ["127.0.0.1:8000"])
    checked = nginx_check(conf)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr
