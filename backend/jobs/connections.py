"""Process-wide connections of the job queue: one Redis client and one database engine per URL.

Both are created on first use and shared by every thread of the process (redis-py's pool and SQLAlchemy's
engine are thread-safe and fork-aware).
"""

from __future__ import annotations

import threading

from backend.settings import Settings

_lock = threading.Lock()
_redis: dict[str, object] = {}
_engines: dict[str, object] = {}


def redis_client(settings: Settings):
    """A ``redis.Redis`` for ``settings.redis_url`` (responses decoded to str). ValueError when unset."""
    import redis

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
    from backend.storage.db import make_engine

    with _lock:
        eng = _engines.get(settings.database_url)
        if eng is None:
            eng = make_engine(settings.database_url)
            _engines[settings.database_url] = eng
        return eng
