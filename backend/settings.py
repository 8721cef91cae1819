"""Settings for every maskweb process, read from the environment in one place.

``Settings.from_env()`` reads the variables below; tests build ``Settings(data_dir=tmp, ...)`` directly.

| variable | field | default |
| --- | --- | --- |
| ``MASKWEB_DATA_DIR`` | ``data_dir`` | ``./data`` |
| ``MASKWEB_STORAGE_URL`` | ``storage_url`` | unset: job files in ``<data_dir>/jobs``; ``s3://bucket/prefix`` for a bucket |
| ``DATABASE_URL`` | ``database_url`` | ``sqlite:///<data_dir>/maskweb.db`` |
| ``REDIS_URL`` | ``redis_url`` | unset: ``maskweb run`` starts its own Redis |
| ``MASKWEB_WEIGHTS`` | ``weights`` | ``weights/mask_rcnn_coco.h5`` |
| ``MASKWEB_MODEL_CONFIG`` | ``model_config`` | ``coco`` (or a JSON file of Config attributes + ``CLASS_NAMES``) |
| ``MASKWEB_PRECISION`` | ``precision`` | ``auto``: the device's default; ``exact`` (float32) or ``fast`` (bfloat16 where native) |
| ``MASKWEB_PORT`` / ``MASKWEB_HOST`` | ``port`` / ``host`` | ``8000`` / ``127.0.0.1`` |
| ``MASKWEB_SECRET_KEY`` | ``secret_key`` | generated once, kept in ``<data_dir>/secret_key`` |
| ``MASKWEB_MAX_FILE_MB`` | ``max_file_mb`` | ``25`` (per uploaded image) |
| ``MASKWEB_MAX_REQUEST_MB`` | ``max_request_mb`` | ``100`` (per upload request) |
| ``MASKWEB_MAX_PIXELS`` | ``max_pixels`` | ``40000000`` (width x height) |
| ``MASKWEB_MAX_INFLIGHT_PER_USER`` | ``max_inflight_per_user`` | ``2`` (jobs per user inside Celery) |
| ``MASKWEB_JOB_TIME_LIMIT`` | ``job_time_limit`` | ``600`` seconds |
| ``MASKWEB_FRONTEND_DIR`` | ``frontend_dir`` | the repository's ``frontend/`` |
| ``MASKWEB_UPLOAD_RATE_LIMIT`` | ``upload_rate_limit`` | ``60 per minute`` (Flask-Limiter syntax; per user) |
| ``MASKWEB_ADDRESS_UPLOAD_RATE_LIMIT`` | ``address_upload_rate_limit`` | ``300 per minute`` (per client address) |
| ``MASKWEB_IDENTITY_RATE_LIMIT`` | ``identity_rate_limit`` | ``20 per minute; 200 per day`` (new users per address) |
| ``MASKWEB_TRUSTED_PROXIES`` | ``trusted_proxies`` | ``0``: proxies in front whose ``X-Forwarded-For`` is believed |
| ``MASKWEB_MAX_QUEUED_PER_USER`` | ``max_queued_per_user`` | ``200`` unfinished jobs per user |
| ``MASKWEB_MAX_STORED_MB_PER_USER`` | ``max_stored_mb_per_user`` | ``2048`` MB of uploaded images kept per user |
| ``MASKWEB_MIN_FREE_DISK_MB`` | ``min_free_disk_mb`` | ``1024``: uploads stop before the data disk falls below it |
| ``MASKWEB_DECODE_MEMORY_MB`` | ``decode_memory_mb`` | ``1024``: memory all concurrent image decodes of one web process may use (each of ``MASKWEB_WEB_PROCESSES`` has its own) |
| ``MASKWEB_MAX_CONCURRENT_DECODES`` | ``max_concurrent_decodes`` | ``2`` image decodes at once in a web process |
| ``MASKWEB_DECODE_WAIT_S`` | ``decode_wait_s`` | ``10``: how long an upload waits for decode room before a 503 |
| ``MASKWEB_COOKIE_SECURE`` | ``cookie_secure`` | off; set ``1`` behind HTTPS so the identity cookie is ``Secure`` |
| ``MASKWEB_OPS_TOKEN`` | ``ops_token`` | unset: ``/readyz`` and ``/metrics`` details only for loopback callers |
| ``MASKWEB_BATCH_SIZE`` | ``batch_size`` | ``0``: per device, 1 on a CPU, 8 on a GPU (images per model call, across jobs) |
| ``MASKWEB_BATCH_WAIT_MS`` | ``batch_wait_ms`` | ``5``: how long a model call waits for more jobs' images |
| ``MASKWEB_WORKER_NICE`` | ``worker_nice`` | ``10``: how much a worker lowers its CPU priority (0 keeps it), so that on a shared machine the web answers first |
| ``MASKWEB_WEIGHTS_URL`` | ``weights_url`` | unset: ``maskweb weights download`` fetches matterport's release |
| ``MASKWEB_WEB_PROCESSES`` | ``web_processes`` | ``1``: gunicorn workers of ``maskweb web`` behind its port (more spread a burst of uploads over more cores) |
| ``PROMETHEUS_MULTIPROC_DIR`` | ``metrics_multiproc_dir`` | unset: ``maskweb web`` makes one for its processes (prometheus_client) |

With ``MASKWEB_STORAGE_URL`` set, the bucket's endpoint and credentials are boto3's own settings
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...), which boto3 reads itself.

This module imports nothing of the rest of maskweb.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
PRECISIONS = (
    "auto",
    "exact",
    "fast",
)  # the engine's names (backend.mrcnn.precision), "auto" = device default


def _env_int(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _env_float(environ: dict[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


@dataclass
class Settings:
    """Everything a maskweb process is configured by. Paths are absolute after construction."""

    data_dir: Path = Path("data")
    storage_url: str | None = None  # None -> job files under data_dir; "s3://bucket/prefix" -> a bucket
    database_url: str = ""  # empty -> sqlite:///<data_dir>/maskweb.db
    redis_url: str | None = None
    weights: Path = Path("weights/mask_rcnn_coco.h5")
    model_config: str = "coco"
    precision: str = "auto"  # the model's arithmetic: exact | fast | auto (backend.mrcnn.precision)
    port: int = 8000
    host: str = "127.0.0.1"
    secret_key: str | None = None  # None -> secret_key_value() reads/creates <data_dir>/secret_key
    max_file_mb: float = 25
    max_request_mb: float = 100
    max_pixels: int = 40_000_000
    max_inflight_per_user: int = 2
    job_time_limit: int = 600
    frontend_dir: Path = field(default_factory=lambda: REPO_ROOT / "frontend")
    upload_rate_limit: str = "60 per minute"
    address_upload_rate_limit: str = "300 per minute"
    identity_rate_limit: str = "20 per minute; 200 per day"
    trusted_proxies: int = 0
    max_queued_per_user: int = 200
    max_stored_mb_per_user: float = 2048
    min_free_disk_mb: float = 1024
    decode_memory_mb: float = 1024
    max_concurrent_decodes: int = 2
    decode_wait_s: float = 10
    cookie_secure: bool = False
    weights_url: str | None = None  # where `maskweb weights download` fetches; None -> matterport's release
    metrics_multiproc_dir: str | None = None  # prometheus_client's multiprocess folder (several web workers)
    ops_token: str | None = None  # bearer token for /readyz and /metrics details (host names, pids, errors)
    batch_size: int = 0  # 0 -> per device (backend.jobs.batching.batch_size_for)
    batch_wait_ms: float = 5
    worker_nice: int = 10  # added to a worker process's nice value before it loads the model (0: unchanged)
    web_processes: int = 1  # gunicorn workers of `maskweb web` behind one port (backend.cli.run.web_argv)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.weights = Path(self.weights).expanduser()
        if not self.weights.is_absolute():
            self.weights = self.weights.resolve()
        self.frontend_dir = Path(self.frontend_dir).expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'maskweb.db'}"
        if self.redis_url == "":
            self.redis_url = None
        if self.storage_url == "":
            self.storage_url = None
        if self.web_processes < 1:
            raise ValueError(f"MASKWEB_WEB_PROCESSES must be at least 1, got {self.web_processes}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"MASKWEB_PRECISION must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``). Raises ValueError on a malformed number."""
        env = dict(os.environ if environ is None else environ)
        defaults = cls.__dataclass_fields__
        return cls(
            data_dir=Path(env.get("MASKWEB_DATA_DIR") or "data"),
            storage_url=env.get("MASKWEB_STORAGE_URL") or None,
            database_url=env.get("DATABASE_URL") or "",
            redis_url=env.get("REDIS_URL") or None,
            weights=Path(env.get("MASKWEB_WEIGHTS") or "weights/mask_rcnn_coco.h5"),
            model_config=env.get("MASKWEB_MODEL_CONFIG") or "coco",
            precision=(env.get("MASKWEB_PRECISION") or "auto").strip().lower(),
            port=_env_int(env, "MASKWEB_PORT", 8000),
            host=env.get("MASKWEB_HOST") or "127.0.0.1",
            secret_key=env.get("MASKWEB_SECRET_KEY") or None,
            max_file_mb=_env_float(env, "MASKWEB_MAX_FILE_MB", 25),
            max_request_mb=_env_float(env, "MASKWEB_MAX_REQUEST_MB", 100),
            max_pixels=_env_int(env, "MASKWEB_MAX_PIXELS", 40_000_000),
            max_inflight_per_user=_env_int(env, "MASKWEB_MAX_INFLIGHT_PER_USER", 2),
            job_time_limit=_env_int(env, "MASKWEB_JOB_TIME_LIMIT", 600),
            frontend_dir=Path(env["MASKWEB_FRONTEND_DIR"])
            if env.get("MASKWEB_FRONTEND_DIR")
            else defaults["frontend_dir"].default_factory(),
            upload_rate_limit=env.get("MASKWEB_UPLOAD_RATE_LIMIT") or "60 per minute",
            address_upload_rate_limit=env.get("MASKWEB_ADDRESS_UPLOAD_RATE_LIMIT") or "300 per minute",
            identity_rate_limit=env.get("MASKWEB_IDENTITY_RATE_LIMIT") or "20 per minute; 200 per day",
            trusted_proxies=_env_int(env, "MASKWEB_TRUSTED_PROXIES", 0),
            max_queued_per_user=_env_int(env, "MASKWEB_MAX_QUEUED_PER_USER", 200),
            max_stored_mb_per_user=_env_float(env, "MASKWEB_MAX_STORED_MB_PER_USER", 2048),
            min_free_disk_mb=_env_float(env, "MASKWEB_MIN_FREE_DISK_MB", 1024),
            decode_memory_mb=_env_float(env, "MASKWEB_DECODE_MEMORY_MB", 1024),
            max_concurrent_decodes=_env_int(env, "MASKWEB_MAX_CONCURRENT_DECODES", 2),
            decode_wait_s=_env_float(env, "MASKWEB_DECODE_WAIT_S", 10),
            ops_token=env.get("MASKWEB_OPS_TOKEN") or None,
            cookie_secure=(env.get("MASKWEB_COOKIE_SECURE") or "").strip().lower()
            in ("1", "true", "yes", "on"),
            batch_size=_env_int(env, "MASKWEB_BATCH_SIZE", 0),
            batch_wait_ms=_env_float(env, "MASKWEB_BATCH_WAIT_MS", 5),
            worker_nice=_env_int(env, "MASKWEB_WORKER_NICE", 10),
            weights_url=env.get("MASKWEB_WEIGHTS_URL") or None,
            metrics_multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            web_processes=_env_int(env, "MASKWEB_WEB_PROCESSES", 1),
        )

    # --- derived values -------------------------------------------------------------------------------------

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * MB)

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * MB)

    @property
    def max_stored_bytes_per_user(self) -> int:
        return int(self.max_stored_mb_per_user * MB)

    @property
    def min_free_disk_bytes(self) -> int:
        return int(self.min_free_disk_mb * MB)

    @property
    def decode_memory_bytes(self) -> int:
        return int(self.decode_memory_mb * MB)

    @property
    def weights_missing(self) -> str | None:
        """None when the weights file exists, else a sentence telling the user how to get it."""
        if self.weights.is_file():
            return None
        return (
            f"The model weights file {self.weights} is missing, so uploads wait in the queue until it exists. "
            "Download it with `maskweb weights download`, or point MASKWEB_WEIGHTS at an existing "
            "mask_rcnn_coco.h5."
        )

    def secret_key_value(self) -> str:
        """The signing secret: ``secret_key`` if set, else the one kept in ``<data_dir>/secret_key``.

        The file is created once (0600, written to a temp file and renamed, so concurrent first starts
        agree on the winner's key).
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.is_file():
            key = path.read_text().strip()
            if key:
                return key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)  # fails if another process won the race: then use its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return path.read_text().strip()
