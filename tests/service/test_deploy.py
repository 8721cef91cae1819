"""The deployment files: docker-compose.yml against the compose specification, and what it must declare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML  # installed with check-jsonschema

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


def test_compose_declares_the_services_the_app_needs():
    compose = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "web", "worker-gpu", "worker-cpu"} <= set(services)
    assert "redis" in str(services["redis"]["volumes"]) and "appendonly" in " ".join(
        services["redis"]["command"]
    )
    assert services["postgres"]["volumes"]
    gpu = services["worker-gpu"]
    assert gpu["environment"]["KERAS_BACKEND"] == "jax"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    for name in ("web", "worker-gpu", "worker-cpu"):
        env = services[name]["environment"]
        assert env["REDIS_URL"].startswith("redis://redis:") and env["DATABASE_URL"].startswith("postgresql")
    assert (ROOT / "Dockerfile").read_text().count("FROM ") >= 2
