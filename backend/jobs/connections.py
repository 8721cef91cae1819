"""Process-wide connections of the job queue: one Redis client, database engine and file store per URL.

Each is created on first use and shared by every thread of the process (redis-py's pool, SQLAlchemy's
engine and boto3's client are thread-safe; the first two are fork-aware, and the store is made after the
fork in a worker's pool process, on its first job).
"""

from __future__ import annotations

import threading

import redis

from backend.settings import Settings
from backend.storage.db import make_engine
from backend.storage.files import open_file_store

_lock = threading.Lock()
_redis: dict[str, object] = {}
_engines: dict[str, object] = {}
_stores: dict[str, object] = {}


def redis_client(settings: Settings):
    """A ``redis.Redis`` for ``settings.redis_url`` (responses decoded to str). ValueError when unset."""
    if not settings.redis_url:
        raise ValueError("REDIS_URL is not set: the job queue needs a Redis server (maskweb run starts one)")
    with _lock:
        client = _redis.get(settings.redis_url)
        if client is None:
            client = redis.Redis.from_url(
                settings.redis_url, decode_responses=True, socket_timeout=10, health_check_interval=30
            )
            _redis[settings.redis_url] = client
        return client


def engine(settings: Settings):
    """The SQLAlchemy engine for ``settings.database_url``."""
    with _lock:
        eng = _engines.get(settings.database_url)
        if eng is None:
            eng = make_engine(settings.database_url)
            _engines[settings.database_url] = eng
        return eng


def file_store(settings: Settings):
    """The ``FileStore`` for ``settings`` (the data directory, or the bucket of ``storage_url``)."""
    key = settings.storage_url or str(settings.data_dir)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = open_file_store(settings)
            _stores[key] = store
        return store
