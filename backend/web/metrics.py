"""Prometheus ``/metrics`` of the web process.

- ``maskweb_jobs{state}``: jobs per state, read from the database at scrape time (a custom collector, so
  every web process reports the same truth);
- ``maskweb_queue_waiting`` / ``maskweb_queue_dispatched``: queued jobs held in the database vs. handed to Celery;
- ``maskweb_job_stage_seconds{stage}``: a summary (count, sum) of the per-stage timings of the last
  ``RECENT_JOBS`` finished jobs (from ``Job.timings``, which the worker records);
- ``maskweb_job_duration_seconds{outcome}``, ``maskweb_model_duration_seconds``: the workers' histograms,
  kept in Redis by ``backend.jobs.metrics`` (when ``REDIS_URL`` is set);
- ``maskweb_uploads_total``, ``maskweb_upload_rejections_total{code}``,
  ``maskweb_http_requests_total{method,endpoint,status}``: counters kept by the web processes.

Under ``maskweb web`` several processes share one port and a scrape reaches any one of them, so the counters
live in prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``, made by
``backend.web.gunicorn_conf``) and every scrape adds up all the processes' values. Without that folder (an app
built in-process, as tests do) they are this process's own.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from sqlalchemy import func, select

from backend.jobs.metrics import duration_metrics
from backend.storage.db import session_scope
from backend.storage.models import DONE, QUEUED, STATES, Job

from .ops_access import may_see_details
from .services import app_services, services

RECENT_JOBS = 500
# What anyone may read: job and upload counts. Timings, per-endpoint requests and the workers' figures need
# the ops token or a loopback caller (``ops_access``).
PUBLIC_SAMPLES = (
    "maskweb_jobs",
    "maskweb_queue_waiting",
    "maskweb_queue_dispatched",
    "maskweb_uploads_total",
    "maskweb_upload_rejections_total",
)
log = logging.getLogger(__name__)


class DatabaseCollector:
    """Reads job counts and recent stage timings from the database, at most once per ``CACHE_S`` seconds:
    counting jobs per state reads an index of every job, so scrapes (several Prometheis, a dashboard polling)
    share one read instead of each paying for it."""

    CACHE_S = 10.0

    def __init__(self, engine):
        self.engine = engine
        self._cached: tuple[float, list] | None = None

    def collect(self):
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self.CACHE_S:
            families = list(self._read())
            if not families:
                return  # the database is unreachable: nothing cached, the next scrape tries again
            self._cached = (now, families)
        yield from self._cached[1]

    def _read(self):
        jobs = GaugeMetricFamily("maskweb_jobs", "Jobs per state (from the database)", labels=["state"])
        waiting = GaugeMetricFamily(
            "maskweb_queue_waiting", "Queued jobs held in the database, not yet in Celery"
        )
        dispatched = GaugeMetricFamily(
            "maskweb_queue_dispatched", "Queued jobs handed to Celery, not yet started"
        )
        stages = SummaryMetricFamily(
            "maskweb_job_stage_seconds",
            f"Seconds per stage over the last {RECENT_JOBS} finished jobs",
            labels=["stage"],
        )
        try:
            with session_scope(self.engine) as db:
                counts = dict(db.execute(select(Job.state, func.count()).group_by(Job.state)).all())
                held = (
                    db.scalar(select(func.count()).where(Job.state == QUEUED, Job.dispatched_at.is_(None)))
                    or 0
                )
                timings = db.scalars(
                    select(Job.timings)
                    .where(Job.state == DONE, Job.timings.is_not(None))
                    .order_by(Job.finished_at.desc())
                    .limit(RECENT_JOBS)
                ).all()
        except Exception:
            return  # /readyz reports the database; a scrape must not fail because of it
        for state in STATES:
            jobs.add_metric([state], counts.get(state, 0))
        waiting.add_metric([], held)
        dispatched.add_metric([], counts.get(QUEUED, 0) - held)
        per_stage: dict[str, list[float]] = {}
        for row in timings:
            for stage, seconds in (row or {}).items():
                if isinstance(seconds, (int, float)):
                    per_stage.setdefault(stage, []).append(float(seconds))
        for stage, values in sorted(per_stage.items()):
            stages.add_metric([stage], count_value=len(values), sum_value=sum(values))
        yield from (jobs, waiting, dispatched, stages)


class WorkerDurationCollector:
    """The workers' ``maskweb_job_duration_seconds`` / ``maskweb_model_duration_seconds`` histograms, which
    H5's ``backend.jobs.metrics`` keeps in Redis; a scrape still succeeds while Redis is down."""

    def __init__(self, settings):
        self.settings = settings

    def collect(self):
        try:
            families = duration_metrics(self.settings)
        except Exception:
            log.warning("worker duration metrics unavailable", exc_info=True)
            return
        yield from families

    def describe(self):
        return []


class WebMetrics:
    def __init__(self, engine, settings=None):
        self.registry = CollectorRegistry()
        self.registry.register(DatabaseCollector(engine))
        if settings is not None and settings.redis_url:
            self.registry.register(WorkerDurationCollector(settings))
        counters: CollectorRegistry | None = self.registry
        if settings is not None and settings.metrics_multiproc_dir:
            # The counters write to the shared files and the scrape reads them all back through the collector;
            # registering them here too would report this process's values a second time.
            multiprocess.MultiProcessCollector(self.registry, path=settings.metrics_multiproc_dir)
            counters = None
        self.uploads = Counter(
            "maskweb_uploads_total", "Images accepted by POST /api/jobs", registry=counters
        )
        self.rejections = Counter(
            "maskweb_upload_rejections_total",
            "Upload requests refused, by error code",
            ["code"],
            registry=counters,
        )
        self.requests = Counter(
            "maskweb_http_requests_total",
            "HTTP requests by method, endpoint and status",
            ["method", "endpoint", "status"],
            registry=counters,
        )

    def uploaded(self, count: int) -> None:
        self.uploads.inc(count)

    def upload_rejected(self, code: str) -> None:
        self.rejections.labels(code).inc()


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics_view():
    registry = services().metrics.registry
    if not may_see_details():
        registry = registry.restricted_registry(PUBLIC_SAMPLES)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_metrics(app: Flask) -> WebMetrics:
    """The app's ``WebMetrics`` (kept on its ``WebServices``), counting every request it answers."""
    svc = app_services(app)
    metrics = svc.metrics = WebMetrics(svc.engine, svc.settings)

    @app.after_request
    def _count(response):
        metrics.requests.labels(
            request.method, request.endpoint or "unknown", str(response.status_code)
        ).inc()
        return response

    return metrics
