"""Where every metric lives: each instrument the sidecar's convention generations export
(conventions.py) registered once on one registry, written through this class's methods (by the
Prometheus sink and by the experiments), rendered for /metrics and read by OTLP metrics. Model
label values are bounded here too, so a model counts against the same cap whichever part
records it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from sidecar.config.models import TelemetryConfig
from sidecar.telemetry.conventions import (
    COUNTER,
    GAUGE,
    LABEL_OVERFLOW,
    TELEMETRY_DROPPED,
    V1_41,
    Generation,
    Instrument,
    metrics_for,
)
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.labels import ModelLabels


def register(metric: Instrument, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
    """Create the prometheus_client metric for one definition on `registry`."""
    unit = "seconds" if metric.unit == "s" else ""
    if metric.kind == COUNTER:
        return Counter(metric.name, metric.description, metric.labels, registry=registry)
    if metric.kind == GAUGE:
        return Gauge(metric.name, metric.description, metric.labels, unit=unit, registry=registry)
    return Histogram(
        metric.name,
        metric.description,
        metric.labels,
        unit=unit,
        buckets=metric.buckets,
        registry=registry,
    )


class _ScrapeTimeCounters(Collector):
    """Exports the counters kept outside the registry: telemetry drops and label overflow."""

    def __init__(
        self, drops: TelemetryDrops, request_models: ModelLabels, response_models: ModelLabels
    ) -> None:
        self._drops = drops
        self._request_models = request_models
        self._response_models = response_models

    def collect(self) -> Iterable[Metric]:
        """The current values, read at scrape time."""
        dropped = CounterMetricFamily(
            TELEMETRY_DROPPED.name, TELEMETRY_DROPPED.description, labels=TELEMETRY_DROPPED.labels
        )
        counts = {"pipeline": 0, **self._drops.snapshot()}
        for sink, count in sorted(counts.items()):
            dropped.add_metric([sink], count)
        overflow = CounterMetricFamily(
            LABEL_OVERFLOW.name, LABEL_OVERFLOW.description, labels=LABEL_OVERFLOW.labels
        )
        overflow.add_metric(["gen_ai_request_model"], self._request_models.overflowed)
        overflow.add_metric(["gen_ai_response_model"], self._response_models.overflowed)
        return [dropped, overflow]


class MetricRegistry:
    """Every metric of one sidecar, on one registry; the one place metrics are created."""

    def __init__(
        self,
        telemetry: TelemetryConfig,
        drops: TelemetryDrops,
        generations: Sequence[Generation] = (V1_41,),
    ) -> None:
        self.registry = CollectorRegistry()
        # The GenAI convention generations this sidecar emits (OTEL_SEMCONV_STABILITY_OPT_IN).
        self.generations = tuple(generations)
        self.instruments = metrics_for(self.generations)
        # Sinks count the finished calls they had to drop here; exported at scrape time.
        self.drops = drops
        self.request_models = ModelLabels(telemetry.max_model_labels)
        self.response_models = ModelLabels(telemetry.max_model_labels)
        self._metrics: dict[str, Any] = {
            metric.name: register(metric, self.registry)
            for metric in self.instruments
            if not metric.collected
        }
        self.registry.register(
            _ScrapeTimeCounters(drops, self.request_models, self.response_models)
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def metric(self, name: str) -> Any:
        """The registered prometheus_client metric named `name`, for a writer that caches its
        labelled children (the Prometheus sink, on the hot path)."""
        return self._metrics[name]

    def inc(self, definition: Instrument, labels: tuple[str, ...], amount: float = 1.0) -> None:
        """Add `amount` to a counter (or gauge) series."""
        self._metrics[definition.name].labels(*labels).inc(amount)

    def observe(self, definition: Instrument, labels: tuple[str, ...], value: float) -> None:
        """Observe `value` in a histogram series."""
        self._metrics[definition.name].labels(*labels).observe(value)

    def set(self, definition: Instrument, labels: tuple[str, ...], value: float) -> None:
        """Set a gauge series."""
        self._metrics[definition.name].labels(*labels).set(value)

    def declare(self, definition: Instrument, labels: tuple[str, ...]) -> None:
        """Export a series at zero before its first event (so `increase()` sees that event)."""
        self._metrics[definition.name].labels(*labels)

    def remove(self, definition: Instrument, labels: tuple[str, ...]) -> None:
        """Stop exporting a series (nothing happens when it does not exist)."""
        with contextlib.suppress(KeyError):
            self._metrics[definition.name].remove(*labels)

    def families(self) -> Iterable[Metric]:
        """Every metric family of the registry as it is now (for OTLP metrics)."""
        return self.registry.collect()

    def render(self, accept: str) -> tuple[bytes, str]:
        """The /metrics body and its content type; OpenMetrics when `accept` asks for it."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
