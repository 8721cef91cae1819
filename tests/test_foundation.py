"""The project's ground: the package imports, the CLI answers, pins agree, lint is clean."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _name(requirement: str) -> str:
    return re.split(r"[\[=<>;! ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for req in requirements:
        req = req.split(";")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)==([^\s]+)", req)
        assert match, f"not pinned with ==: {req!r}"
        pins[_name(match.group(1))] = match.group(2)
    return pins


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return _pins(reqs)


def environment_pins() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = [line.strip()[2:] for line in lines[start + 1 :] if line.strip().startswith("- ")]
    python = next(line for line in lines if line.strip().startswith("- python="))
    pins = _pins(reqs)
    pins["python"] = python.split("=", 1)[1]
    return pins


def test_every_dependency_is_pinned_exactly():
    pins = pyproject_pins()
    for needed in (
        "keras",
        "numpy",
        "pillow",
        "h5py",
        "flask",
        "flask-socketio",
        "celery",
        "redis",
        "sqlalchemy",
        "pytest",
    ):
        assert needed in pins, f"{needed} missing from pyproject.toml"


def test_environment_yml_matches_pyproject_pins():
    env, project = environment_pins(), pyproject_pins()
    assert env.pop("python") == "3.11"
    assert env == project


def test_installed_versions_match_pins():
    from importlib.metadata import PackageNotFoundError, version

    wrong = {}
    for name, pinned in pyproject_pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            wrong[name] = (pinned, None)
            continue
        if installed != pinned:
            wrong[name] = (pinned, installed)
    assert not wrong, f"installed versions differ from pyproject pins (pinned, installed): {wrong}"


@pytest.mark.parametrize(
    "module", ["backend", "backend.cli", "backend.mrcnn", "backend.web", "backend.jobs", "backend.storage"]
)
def test_packages_import(module):
    __import__(module)


def test_cli_help_lists_the_commands():
    out = subprocess.run([str(BIN / "maskweb"), "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: maskweb" in out
    for command in ("run", "segment", "weights", "bench"):
        assert re.search(rf"^\s+{command}\b", out, re.M), f"`maskweb {command}` missing from --help:\n{out}"


def test_cli_help_does_not_import_tensorflow():
    code = (
        "import sys, backend.cli as c; c.build_parser(); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ruff_is_clean():
    proc = subprocess.run(
        [str(BIN / "ruff"), "check", "backend", "tests"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_weight_files_are_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    assert not [p for p in tracked if p.endswith((".h5", ".keras", ".pt"))]


def test_import_contracts_hold_and_catch_a_lazy_violation(tmp_path):
    """The walls of pyproject's [tool.importlinter] hold here, and a copy of the tree with one import of Keras
    hidden inside a web function breaks the web's contract (so the check sees function-level imports)."""
    lint = [str(BIN / "lint-imports"), "--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kept = subprocess.run(lint, cwd=ROOT, env=env, capture_output=True, text=True)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    shutil.copytree(ROOT / "backend", tmp_path / "backend", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "backend" / "web" / "sneaky.py").write_text("def predict():\n    import keras\n")
    broken = subprocess.run(
        lint, cwd=tmp_path, env={**env, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True
    )
    assert broken.returncode != 0
    assert "The web never imports the model engine or a deep-learning framework BROKEN" in broken.stdout
    assert "backend.web.sneaky -> keras" in broken.stdout
