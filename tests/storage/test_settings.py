"""Settings from the environment: defaults, every variable, clear errors."""

from __future__ import annotations

import pytest

from backend.settings import Settings


def test_defaults_follow_the_contract(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.data_dir == tmp_path / "data"
    assert s.database_url == f"sqlite:///{tmp_path / 'data' / 'maskweb.db'}"
    assert s.redis_url is None and s.storage_url is None and s.model_config == "coco"
    assert (s.port, s.host) == (8000, "127.0.0.1")
    assert (s.max_file_bytes, s.max_request_bytes, s.max_pixels) == (25 * 2**20, 100 * 2**20, 40_000_000)
    assert (s.max_inflight_per_user, s.job_time_limit, s.web_processes) == (2, 600, 1)
    assert s.weights == tmp_path / "weights" / "mask_rcnn_coco.h5"
    assert "maskweb weights download" in s.weights_missing and "MASKWEB_WEIGHTS" in s.weights_missing


def test_every_variable_is_read(tmp_path):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"x")
    s = Settings.from_env(
        {
            "MASKWEB_DATA_DIR": str(tmp_path / "d"),
            "MASKWEB_STORAGE_URL": "s3://bucket/maskweb",
            "DATABASE_URL": "postgresql+psycopg://u@h/db",
            "REDIS_URL": "redis://h:1/2",
            "MASKWEB_WEIGHTS": str(weights),
            "MASKWEB_MODEL_CONFIG": "/x/config.json",
            "MASKWEB_PORT": "9000",
            "MASKWEB_HOST": "0.0.0.0",
            "MASKWEB_SECRET_KEY": "k",
            "MASKWEB_MAX_FILE_MB": "5",
            "MASKWEB_MAX_REQUEST_MB": "7.5",
            "MASKWEB_MAX_PIXELS": "1000",
            "MASKWEB_MAX_INFLIGHT_PER_USER": "3",
            "MASKWEB_JOB_TIME_LIMIT": "60",
            "MASKWEB_FRONTEND_DIR": str(tmp_path / "fe"),
            "MASKWEB_COOKIE_SECURE": "1",
            "MASKWEB_WEB_PROCESSES": "3",
        }
    )
    assert s.web_processes == 3
    assert s.database_url == "postgresql+psycopg://u@h/db" and s.redis_url == "redis://h:1/2"
    assert s.storage_url == "s3://bucket/maskweb"
    assert s.weights_missing is None and s.model_config == "/x/config.json"
    assert (s.port, s.host, s.secret_key_value()) == (9000, "0.0.0.0", "k")
    assert (s.max_file_bytes, s.max_request_bytes, s.max_pixels) == (5 * 2**20, int(7.5 * 2**20), 1000)
    assert (s.max_inflight_per_user, s.job_time_limit, s.cookie_secure) == (3, 60, True)
    assert s.frontend_dir == tmp_path / "fe"


def test_a_malformed_number_names_the_variable():
    with pytest.raises(ValueError, match="MASKWEB_PORT must be an integer"):
        Settings.from_env({"MASKWEB_PORT": "eighty"})
    with pytest.raises(ValueError, match="MASKWEB_WEB_PROCESSES must be at least 1, got 0"):
        Settings.from_env({"MASKWEB_WEB_PROCESSES": "0"})


def test_the_generated_secret_is_kept_in_the_data_dir(tmp_path):
    first = Settings(data_dir=tmp_path).secret_key_value()
    assert len(first) >= 32
    assert Settings(data_dir=tmp_path).secret_key_value() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_model_precision_setting():
    assert Settings.from_env({}).precision == "auto"
    assert Settings.from_env({"MASKWEB_PRECISION": " Fast "}).precision == "fast"
    with pytest.raises(ValueError, match="MASKWEB_PRECISION must be one of auto, exact, fast"):
        Settings.from_env({"MASKWEB_PRECISION": "half"})
