"""``/healthz`` (the process answers), ``/readyz`` (database, file store, Redis and at least one live worker).

Live workers are found through heartbeat keys ``maskweb:worker:<hostname>`` that every worker (H5's
``backend.jobs``) sets with a short TTL and refreshes while it runs; a key's value may be a JSON object
describing the worker, which ``/readyz`` passes on.
"""

from __future__ import annotations

import json
import time

import redis
from flask import Blueprint, jsonify
from sqlalchemy import text

from backend.jobs.leases import WORKER_PREFIX

from .ops_access import may_see_details
from .services import services

REDIS_TIMEOUT_S = 2

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"ok": True})


def check_database() -> dict:
    started = time.perf_counter()
    try:
        with services().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "seconds": round(time.perf_counter() - started, 4)}


def check_storage() -> dict:
    """The file store can be written: the data directory, or the bucket (exists, credentials accepted)."""
    store = services().files
    started = time.perf_counter()
    try:
        store.check()
    except Exception as exc:
        return {"ok": False, "where": store.describe(), "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "where": store.describe(), "seconds": round(time.perf_counter() - started, 4)}


def check_redis_and_workers() -> tuple[dict, dict]:
    url = services().settings.redis_url
    if not url:
        missing = {"ok": False, "error": "REDIS_URL is not set"}
        return missing, {"ok": False, "count": 0, "workers": [], "error": "no Redis to look for workers in"}
    client = redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S, decode_responses=True
    )
    try:
        client.ping()
        workers = []
        for key in sorted(client.scan_iter(match=WORKER_PREFIX + "*", count=100)):
            raw = client.get(key)
            if raw is None:
                continue  # expired between SCAN and GET
            try:
                info = json.loads(raw)
            except ValueError:
                info = None
            entry = {"hostname": key[len(WORKER_PREFIX) :]}
            if isinstance(info, dict):
                entry.update({k: v for k, v in info.items() if k != "hostname"})
            workers.append(entry)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        return {"ok": False, "error": error}, {
            "ok": False,
            "count": 0,
            "workers": [],
            "error": "Redis unreachable",
        }
    finally:
        client.close()
    worker_check = {"ok": bool(workers), "count": len(workers), "workers": workers}
    if not workers:
        worker_check["error"] = "no live worker: start one with `maskweb worker`"
    return {"ok": True}, worker_check


@bp.get("/readyz")
def readyz():
    """Ready when the database, the file store, Redis and at least one worker answer. Anonymous callers get each check's
    ``ok`` and the worker count; details (errors, host names, pids) need ``ops_access.may_see_details``."""
    database, storage = check_database(), check_storage()
    redis_check, workers = check_redis_and_workers()
    ready = database["ok"] and storage["ok"] and redis_check["ok"] and workers["ok"]
    checks = {"database": database, "storage": storage, "redis": redis_check, "workers": workers}
    if not may_see_details():
        checks = {
            name: {k: v for k, v in check.items() if k in ("ok", "count")} for name, check in checks.items()
        }
    return jsonify({"ready": ready, "checks": checks}), 200 if ready else 503
