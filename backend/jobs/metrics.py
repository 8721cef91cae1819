"""Job and model durations as Prometheus histograms kept in Redis, so every worker adds to the same series
and the web's ``/metrics`` can read them without sharing a process with the workers.

Writing (workers): ``record_job(settings, outcome, job_seconds, model_seconds)`` after each job.
Reading (web): ``duration_metrics(settings)`` -> prometheus_client metric families; ``DurationCollector``
wraps it for ``registry.register(DurationCollector(settings))``.

Series: ``maskweb_job_duration_seconds{outcome}`` (one attempt, from start to its end; outcome = done | failed |
cancelled), ``maskweb_model_duration_seconds`` (the model and mask stages of a done job) and
``maskweb_model_batch_images`` (images per model call: several jobs share one when ``MASKWEB_BATCH_SIZE`` > 1).
Storage: one Redis hash per series, ``maskweb:metrics:<name>:<label value>``, fields ``le:<bound>`` (cumulative
counts), ``count`` and ``sum``.
"""

from __future__ import annotations

import logging

from prometheus_client.core import HistogramMetricFamily

from backend.settings import Settings

from .connections import redis_client

log = logging.getLogger(__name__)

PREFIX = "maskweb:metrics:"
BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
JOB = "job_duration_seconds"
MODEL = "model_duration_seconds"
BATCH = "model_batch_images"
_DOCS = {
    JOB: "Time a worker spent on one job attempt, from start to done, failed or cancelled.",
    MODEL: "Time spent in the model and mask stages of a job that finished.",
    BATCH: "Images in one model call (each from its own job).",
}
_LABELS = {JOB: ("outcome",), MODEL: (), BATCH: ()}
_BUCKETS = {JOB: BUCKETS, MODEL: BUCKETS, BATCH: (1, 2, 4, 8, 16, 32, 64)}


def _key(name: str, label_value: str = "") -> str:
    return f"{PREFIX}{name}:{label_value}"


def _observe(pipe, name: str, value: float, label_value: str = "") -> None:
    key = _key(name, label_value)
    for bound in _BUCKETS[name]:
        if value <= bound:
            pipe.hincrby(key, f"le:{bound}", 1)
    pipe.hincrby(key, "count", 1)
    pipe.hincrbyfloat(key, "sum", float(value))


def record_job(
    settings: Settings, outcome: str, job_seconds: float, model_seconds: float | None = None
) -> None:
    """Add one job attempt (and, when given, its model time) to the histograms. A failure (Redis down) is
    logged: a lost observation costs a metric, never the job that was just recorded."""
    try:
        pipe = redis_client(settings).pipeline()
        _observe(pipe, JOB, job_seconds, outcome)
        if model_seconds is not None:
            _observe(pipe, MODEL, model_seconds)
        pipe.execute()
    except Exception:
        log.warning("could not record the duration of a %s job", outcome, exc_info=True)


def record_batch(settings: Settings, images: int) -> None:
    """Add one model call of ``images`` images to its histogram."""
    pipe = redis_client(settings).pipeline()
    _observe(pipe, BATCH, images)
    pipe.execute()


def duration_metrics(settings: Settings) -> list:
    """The histograms as ``prometheus_client`` HistogramMetricFamily objects (empty series are omitted)."""
    r = redis_client(settings)
    families = []
    for name, labels in _LABELS.items():
        family = HistogramMetricFamily(f"maskweb_{name}", _DOCS[name], labels=list(labels))
        for key in sorted(r.scan_iter(match=f"{PREFIX}{name}:*", count=100)):
            label_value = key[len(f"{PREFIX}{name}:") :]
            fields = r.hgetall(key)
            count = int(fields.get("count", 0))
            buckets = [(str(float(b)), int(fields.get(f"le:{b}", 0))) for b in _BUCKETS[name]]
            buckets.append(("+Inf", count))
            family.add_metric(
                [label_value] if labels else [], buckets, sum_value=float(fields.get("sum", 0.0))
            )
        families.append(family)
    return families


class DurationCollector:
    """A prometheus_client collector over ``duration_metrics``: ``registry.register(DurationCollector(s))``."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self):
        yield from duration_metrics(self.settings)

    def describe(self):
        return []  # unknown until collected: keeps registration from calling Redis
