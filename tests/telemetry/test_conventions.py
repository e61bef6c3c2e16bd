"""The table of conventions is the only place a metric is named: the dashboards and alert rules
take every name from it, read every generation of a renamed measurement, and name nothing
the sidecar does not export; Prometheus names follow from the OTel names by the usual rules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from sidecar.telemetry.conventions import (
    ALL_METRICS,
    ALTERNATIVES,
    COUNTER,
    GAUGE,
    HISTOGRAM,
    LABELS,
    RECORDINGS,
    Instrument,
    prometheus_name,
)

REPO = Path(__file__).resolve().parents[2]
METRIC_NAME = re.compile(r"\b(?:gen_ai_client_|model_sidecar_)[a-z0-9_]*[a-z0-9]")
# Recording rules are named `level:metric:operation`; the metric part is not a series.
RECORD_NAME = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")
SUFFIXES = ("_bucket", "_count", "_sum")


def exported_series() -> set[str]:
    """Every series name some mode of the sidecar exports."""
    names = set()
    for metric in ALL_METRICS:
        names.add(metric.name)
        if metric.kind == HISTOGRAM:
            names.update(metric.name + suffix for suffix in SUFFIXES)
    return names


def generated_queries() -> dict[str, str]:
    """Every PromQL expression of the committed dashboards and rules, by where it is."""
    found = {}
    for path in sorted((REPO / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found[f"{path.name} {panel['title']} {target['refId']}"] = target["expr"]
    for group in yaml.safe_load((REPO / "alerts" / "rules.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            found[f"rules.yaml {rule.get('record') or rule['alert']}"] = rule["expr"]
    return found


@pytest.mark.parametrize("package", ["dashboards", "alerts"])
def test_no_metric_is_named_by_hand(package: str) -> None:
    named = [
        f"{path.relative_to(REPO)}:{number}: {match}"
        for path in sorted((REPO / package).glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for match in METRIC_NAME.findall(line)
    ]
    assert not named, "metric names written by hand (take them from the table):\n" + "\n".join(
        named
    )


def test_generated_queries_name_only_exported_series() -> None:
    exported = exported_series()
    unknown = {
        f"{where}: {name}"
        for where, expr in generated_queries().items()
        for name in METRIC_NAME.findall(RECORD_NAME.sub("", expr))
        if name not in exported
    }
    assert not unknown, sorted(unknown)


def test_a_renamed_measurement_is_read_in_every_generation() -> None:
    checked = 0
    for where, expr in generated_queries().items():
        used = set(METRIC_NAME.findall(RECORD_NAME.sub("", expr)))
        for alternatives in ALTERNATIVES:
            for suffix in SUFFIXES:
                names = {name + suffix for name in alternatives.names}
                if used & names:
                    checked += 1
                    assert names <= used, f"{where} reads only {used & names}: {expr}"
                    # Newest first: the first name present wins per series under `or`.
                    positions = [expr.index(name + suffix) for name in alternatives.names]
                    assert positions == sorted(positions), where
    assert checked >= 10


@pytest.mark.parametrize(
    ("otel", "kind", "unit", "expected"),
    [
        ("gen_ai.client.operation.duration", HISTOGRAM, "s",
         "gen_ai_client_operation_duration_seconds"),
        ("gen_ai.client.token.usage", HISTOGRAM, "{token}", "gen_ai_client_token_usage"),
        (
            "gen_ai.client.inference.usage.cache_read.input_tokens", COUNTER, "{token}",
            "gen_ai_client_inference_usage_cache_read_input_tokens_total",
        ),
        ("model_sidecar.cost", COUNTER, "USD", "model_sidecar_cost_usd_total"),
        ("model_sidecar.edit", HISTOGRAM, "s", "model_sidecar_edit_seconds"),
        ("model_sidecar.shadow_paired_duration", COUNTER, "s",
         "model_sidecar_shadow_paired_duration_seconds_total"),
        ("model_sidecar.experiment_active", GAUGE, "1", "model_sidecar_experiment_active"),
        ("x.latency_seconds", HISTOGRAM, "s", "x_latency_seconds"),
    ],
)  # fmt: skip
def test_prometheus_names_follow_the_otel_names(
    otel: str, kind: str, unit: str, expected: str
) -> None:
    assert prometheus_name(otel, kind, unit) == expected


def test_the_table_is_consistent() -> None:
    names = [metric.name for metric in ALL_METRICS]
    assert len(names) == len(set(names))
    otel_names = [metric.otel_name for metric in ALL_METRICS]
    assert len(otel_names) == len(set(otel_names))
    for metric in ALL_METRICS:
        assert (metric.kind == HISTOGRAM) == bool(metric.buckets), metric.name
        assert list(metric.buckets) == sorted(metric.buckets), metric.name
        assert len(metric.attributes) == len(set(metric.attributes)), metric.name
    for recording in RECORDINGS:
        assert recording.instrument in ALL_METRICS
        assert bool(recording.token) == (recording.measure in ("usage", "per_operation"))
    # Semconv attributes keep their semconv keys over OTLP.
    assert LABELS["error_type"].attribute == "error.type"
    assert LABELS["gen_ai_token_modality"].attribute == "gen_ai.token.modality"
    with pytest.raises(ValueError, match="labels not in LABELS"):
        Instrument("x.y", COUNTER, "1", "bad", ("no_such_label",))
