"""The three convention modes as a test sets them, and reading /metrics families per mode."""

from __future__ import annotations

from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from sidecar.config.models import TelemetryConfig
from sidecar.record import CallRecord
from sidecar.telemetry.conventions import OPT_IN_VARIABLE, generations_for
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.prometheus import PrometheusSink
from sidecar.telemetry.registry import MetricRegistry

# Mode name → the OTEL_SEMCONV_STABILITY_OPT_IN value that selects it ("" = unset).
MODES = {
    "v1.41": "",
    "latest": "gen_ai_latest_experimental",
    "dup": "gen_ai_latest_experimental/dup",
}
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def mode_environ(mode: str, **extra: str) -> dict[str, str]:
    """The environment of a sidecar in `mode` (other OTEL_* variables in `extra`)."""
    value = MODES[mode]
    return {**({OPT_IN_VARIABLE: value} if value else {}), **extra}


def sink_in_mode(mode: str) -> PrometheusSink:
    """A Prometheus sink on its own registry, emitting `mode`'s generations."""
    generations = generations_for(MODES[mode] or None)
    return PrometheusSink(MetricRegistry(TelemetryConfig(), TelemetryDrops(), generations))


def feed(sink: PrometheusSink, records: list[CallRecord]) -> None:
    for record in records:
        sink.call_started(record)
        sink.call_finished(record)


def families(text: str, *, openmetrics: bool = False) -> dict[str, Metric]:
    """Metric families of an exposition, by family name (without the `_created` gauges the
    classic text format shows for counters and histograms)."""
    parse: Any = openmetrics_families if openmetrics else text_string_to_metric_families
    return {f.name: f for f in parse(text) if not f.name.endswith("_created")}


def genai_families(found: dict[str, Metric]) -> dict[str, str]:
    """{family name: type} of the gen_ai_* families."""
    return {name: family.type for name, family in found.items() if name.startswith("gen_ai_")}


def value(family: Metric, sample_name: str, **labels: str) -> float:
    """The sum of `family`'s samples called `sample_name` whose labels include `labels`."""
    return sum(
        sample.value
        for sample in family.samples
        if sample.name == sample_name and labels.items() <= sample.labels.items()
    )


def bounds(family: Metric) -> list[float]:
    """The bucket bounds of a histogram family, +Inf last."""
    found = {float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")}
    return sorted(found)
