"""Metrics over OTLP, for teams that run only an OpenTelemetry Collector: the registry's own
aggregates, read every OTEL_METRIC_EXPORT_INTERVAL and pushed with cumulative temporality.

Nothing is recorded per call for this: the Prometheus registry already aggregates every
call, so the export converts its families (by the table in conventions.py: OTel names,
units, attribute keys) into SDK `MetricsData` and hands them to the SDK's OTLP metric
exporter (gRPC or HTTP/protobuf) on its own thread. A failed export loses nothing: the next
one carries the same cumulative totals.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from sidecar.config.otel import wants_otlp_metrics
from sidecar.telemetry.conventions import COUNTER, GAUGE, LABELS, Instrument
from sidecar.telemetry.otlp_settings import METRICS, ExporterSettings, resource_from_environ

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter
    from prometheus_client.metrics_core import Metric as Family

    from sidecar.telemetry.registry import MetricRegistry

log = logging.getLogger("sidecar.telemetry.otlp_metrics")

SCOPE_NAME = "model_sidecar"
DEFAULT_INTERVAL_MS = 60000
DEFAULT_TIMEOUT_MS = 30000


def build_otlp_metrics(
    metrics: MetricRegistry, environ: Mapping[str, str]
) -> OtlpMetricsExporter | None:
    """An exporter when OTEL_METRICS_EXPORTER=otlp and an endpoint is configured, else None."""
    if not wants_otlp_metrics(environ):
        return None
    settings = ExporterSettings.from_environ(environ, METRICS)
    if settings is None:
        log.warning("OTEL_METRICS_EXPORTER=otlp but no OTLP endpoint is set; metrics stay local")
        return None
    preference = environ.get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "").strip()
    if preference and preference.lower() != "cumulative":
        log.warning("metric temporality %r is not supported; exporting cumulative", preference)
    return OtlpMetricsExporter(
        metrics,
        settings.build_metric_exporter(),
        resource_from_environ(environ),
        interval_s=_milliseconds(environ, "OTEL_METRIC_EXPORT_INTERVAL", DEFAULT_INTERVAL_MS),
        timeout_s=_milliseconds(environ, "OTEL_METRIC_EXPORT_TIMEOUT", DEFAULT_TIMEOUT_MS),
    )


def _milliseconds(environ: Mapping[str, str], name: str, default: int) -> float:
    raw = environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        log.warning("%s=%r is not a number; using %s", name, raw, default)
        value = default
    return max(value, 1.0) / 1000


class OtlpMetricsExporter:
    """Pushes a MetricRegistry's metrics over OTLP every `interval_s`, and once more at close."""

    def __init__(
        self,
        metrics: MetricRegistry,
        exporter: MetricExporter,
        resource: Resource,
        *,
        interval_s: float = DEFAULT_INTERVAL_MS / 1000,
        timeout_s: float = DEFAULT_TIMEOUT_MS / 1000,
    ) -> None:
        self.metrics = metrics
        self.exporter = exporter
        self.resource = resource
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.exports = 0
        self.failures = 0
        # Cumulative series start when the sidecar does (every series is 0 until its first call).
        self.start_unix_ns = time.time_ns()
        self._instruments = {_family_name(i): i for i in metrics.instruments}
        self._scope = InstrumentationScope(SCOPE_NAME)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Export every `interval_s` on a daemon thread."""
        self._thread = threading.Thread(
            target=self._run, name="model-sidecar-otlp-metrics", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.export()

    def collect(self) -> MetricsData:
        """The registry's current aggregates as OTLP metrics data."""
        now = time.time_ns()
        converted = [
            metric
            for family in self.metrics.families()
            if (instrument := self._instruments.get(family.name)) is not None
            and (metric := self._convert(instrument, family, now)) is not None
        ]
        scope = ScopeMetrics(self._scope, converted, "")
        return MetricsData([ResourceMetrics(self.resource, [scope], "")])

    def export(self) -> bool:
        """Collect and send once; True when the collector took it."""
        with self._lock:  # the interval thread and close() never send at once
            try:
                result = self.exporter.export(self.collect(), timeout_millis=self.timeout_s * 1000)
            except Exception:  # a broken exporter costs metrics, never the sidecar
                log.exception("OTLP metrics export failed")
                result = MetricExportResult.FAILURE
            self.exports += 1
            if result is not MetricExportResult.SUCCESS:
                self.failures += 1
                log.warning("OTLP metrics export failed (%d so far)", self.failures)
                return False
            return True

    def close(self) -> None:
        """Stop the interval, send the final totals, shut the exporter down."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s)
        self.export()
        self.exporter.shutdown(timeout_millis=self.timeout_s * 1000)

    def _convert(self, instrument: Instrument, family: Family, now: int) -> Metric | None:
        points: Any
        if instrument.kind == COUNTER:
            points = [
                NumberDataPoint(self._attributes(s.labels), self.start_unix_ns, now, s.value)
                for s in family.samples
                if s.name.endswith("_total")
            ]
            data: Any = Sum(points, AggregationTemporality.CUMULATIVE, is_monotonic=True)
        elif instrument.kind == GAUGE:
            points = [
                NumberDataPoint(self._attributes(s.labels), self.start_unix_ns, now, s.value)
                for s in family.samples
            ]
            data = Gauge(points)
        else:
            points = list(self._histogram_points(instrument, family.samples, now))
            data = Histogram(points, AggregationTemporality.CUMULATIVE)
        if not points:
            return None
        return Metric(instrument.otel_name, instrument.description, instrument.unit, data)

    def _histogram_points(
        self, instrument: Instrument, samples: Iterable[Any], now: int
    ) -> Iterable[HistogramDataPoint]:
        # Prometheus buckets are cumulative (`le`); OTLP counts each bucket on its own.
        series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
        for sample in samples:
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            entry = series.setdefault(tuple(sorted(labels.items())), {"buckets": {}})
            if sample.name.endswith("_bucket"):
                entry["buckets"][float(sample.labels["le"])] = sample.value
            elif sample.name.endswith("_count"):
                entry["count"] = sample.value
            elif sample.name.endswith("_sum"):
                entry["sum"] = sample.value
        bounds = list(instrument.buckets)
        for key, entry in series.items():
            cumulative = [entry["buckets"].get(bound, 0.0) for bound in (*bounds, float("inf"))]
            counts = [int(cumulative[0])] + [
                int(current - previous) for previous, current in pairwise(cumulative)
            ]
            yield HistogramDataPoint(
                attributes=self._attributes(dict(key)),
                start_time_unix_nano=self.start_unix_ns,
                time_unix_nano=now,
                count=int(entry.get("count", cumulative[-1])),
                sum=entry.get("sum", 0.0),
                bucket_counts=counts,
                explicit_bounds=bounds,
                min=None,  # type: ignore[arg-type]  # Prometheus keeps neither min nor max
                max=None,  # type: ignore[arg-type]
            )

    @staticmethod
    def _attributes(labels: Mapping[str, str]) -> dict[str, str]:
        return {LABELS[name].attribute: value for name, value in labels.items() if name in LABELS}


def _family_name(instrument: Instrument) -> str:
    """The name prometheus_client gives the instrument's family (counters lose `_total`)."""
    return instrument.name.removesuffix("_total") if instrument.kind == COUNTER else instrument.name
