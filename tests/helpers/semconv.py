"""The three convention modes as a test sets them, and reading /metrics families per mode."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from sidecar.config.models import TelemetryConfig
from sidecar.record import CallRecord
from sidecar.telemetry.conventions import ALTERNATIVES, OPT_IN_VARIABLE, generations_for
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


def _alternative(name: str) -> str:
    """A key shared by the names of one measurement in every generation (same suffix)."""
    for index, alternatives in enumerate(ALTERNATIVES):
        for suffix in ("", "_bucket", "_count", "_sum"):
            if name in {candidate + suffix for candidate in alternatives.names}:
                return f"alternatives {index}{suffix}"
    return name


def selector_groups(selectors: Iterable[str]) -> list[tuple[str, ...]]:
    """The selectors of a query, grouped: one group per selector, except that the names one
    measurement has in different generations, with the same matchers, form one group (a
    query reads whichever is present: one of them having data is enough)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for selector in selectors:
        name, _, matchers = selector.partition("{")
        groups.setdefault((_alternative(name), matchers), []).append(selector)
    return [tuple(group) for group in groups.values()]


def series_in_mode(series: str, mode: str) -> list[str]:
    """A promtool input series written with v1.41 names, as a sidecar in `mode` exports it:
    the newest name (latest), both names (dup), or unchanged (v1.41)."""
    name, brace, rest = series.partition("{")
    for alternatives in ALTERNATIVES:
        for suffix in ("_bucket", "_count", "_sum"):
            if name == alternatives.names[-1] + suffix:
                newest = alternatives.names[0] + suffix + brace + rest
                return {"v1.41": [series], "latest": [newest], "dup": [series, newest]}[mode]
    return [series]


def promtool_tests_in_mode(tests: dict[str, Any], mode: str) -> dict[str, Any]:
    """A promtool unit-test file whose input series are rewritten by `series_in_mode`."""
    for test in tests["tests"]:
        test["input_series"] = [
            {**item, "series": renamed}
            for item in test.get("input_series", [])
            for renamed in series_in_mode(item["series"], mode)
        ]
    return tests
