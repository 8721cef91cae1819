"""Job and model durations as Prometheus histograms kept in Redis, so every worker adds to the same series
and the web's ``/metrics`` can read them without sharing a process with the workers.

Writing (workers): ``record_job(settings, outcome, job_seconds, model_seconds)`` after each job.
Reading (web): ``duration_metrics(settings)`` -> prometheus_client metric families; ``DurationCollector``
wraps it for ``registry.register(DurationCollector(settings))``.

Series: ``maskweb_job_duration_seconds{outcome}`` (one attempt, from start to its end; outcome = done | failed |
cancelled) and ``maskweb_model_duration_seconds`` (the model and mask stages of a done job).
Storage: one Redis hash per series, ``maskweb:metrics:<name>:<label value>``, fields ``le:<bound>`` (cumulative
counts), ``count`` and ``sum``.
"""

from __future__ import annotations

from backend.settings import Settings

from .connections import redis_client

PREFIX = "maskweb:metrics:"
BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
JOB = "job_duration_seconds"
MODEL = "model_duration_seconds"
_DOCS = {
    JOB: "Time a worker spent on one job attempt, from start to done, failed or cancelled.",
    MODEL: "Time spent in the model and mask stages of a job that finished.",
}
_LABELS = {JOB: ("outcome",), MODEL: ()}


def _key(name: str, label_value: str = "") -> str:
    return f"{PREFIX}{name}:{label_value}"


def _observe(pipe, name: str, seconds: float, label_value: str = "") -> None:
    key = _key(name, label_value)
    for bound in BUCKETS:
        if seconds <= bound:
            pipe.hincrby(key, f"le:{bound}", 1)
    pipe.hincrby(key, "count", 1)
    pipe.hincrbyfloat(key, "sum", float(seconds))


def record_job(
    settings: Settings, outcome: str, job_seconds: float, model_seconds: float | None = None
) -> None:
    """Add one job attempt (and, when given, its model time) to the histograms."""
    pipe = redis_client(settings).pipeline()
    _observe(pipe, JOB, job_seconds, outcome)
    if model_seconds is not None:
        _observe(pipe, MODEL, model_seconds)
    pipe.execute()


def duration_metrics(settings: Settings) -> list:
    """The histograms as ``prometheus_client`` HistogramMetricFamily objects (empty series are omitted)."""
    from prometheus_client.core import HistogramMetricFamily

    r = redis_client(settings)
    families = []
    for name, labels in _LABELS.items():
        family = HistogramMetricFamily(f"maskweb_{name}", _DOCS[name], labels=list(labels))
        for key in sorted(r.scan_iter(match=f"{PREFIX}{name}:*", count=100)):
            label_value = key[len(f"{PREFIX}{name}:") :]
            fields = r.hgetall(key)
            count = int(fields.get("count", 0))
            buckets = [(str(float(b)), int(fields.get(f"le:{b}", 0))) for b in BUCKETS] + [("+Inf", count)]
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
