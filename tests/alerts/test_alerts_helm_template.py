"""helm/model-sidecar/files/alert-rules.yaml.tpl, rendered by Helm through `tpl` from a
throwaway chart, is byte for byte the plain rule file: with default values it equals
alerts/rules.yaml, with other values it equals `python -m alerts --set ... --out`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from alerts import helm_values, rule_file
from alerts.generate import HELM_TEMPLATE_PATH, REPO_ROOT, RULES_PATH
from alerts.settings import go_number

TEMPLATE = 'spec:\n  {{- tpl (.Files.Get "files/alert-rules.yaml.tpl") . | nindent 2 }}\n'
RAW = '{{ tpl (.Files.Get "files/alert-rules.yaml.tpl") . }}'


def make_chart(root: Path, values: Mapping[str, Any], template: str) -> Path:
    """A minimal chart: the committed rules template, `values` as values.yaml."""
    (root / "templates").mkdir(parents=True)
    (root / "files").mkdir()
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: rules\nversion: 0.1.0\n")
    (root / "values.yaml").write_text(yaml.safe_dump(dict(values), sort_keys=False))
    (root / "files" / "alert-rules.yaml.tpl").write_bytes(
        (REPO_ROOT / HELM_TEMPLATE_PATH).read_bytes()
    )
    (root / "templates" / "rules.yaml").write_text(template)
    return root


def render(chart: Path, values: Mapping[str, Any] | None = None) -> str:
    helm.disable_logging()
    with helm.Chart.load(str(chart)) as loaded:
        files: dict[str, str] = loaded.render(dict(values or {}), name="demo", namespace="llm")
    return files["rules/templates/rules.yaml"]


@pytest.fixture
def default_chart(tmp_path: Path) -> Iterator[Path]:
    yield make_chart(tmp_path / "chart", {"alerts": helm_values()}, RAW)


def test_default_values_render_exactly_the_plain_rule_file(default_chart: Path) -> None:
    rendered = render(default_chart)
    assert rendered == (REPO_ROOT / RULES_PATH).read_text()
    assert "{{`" not in rendered and ".Values" not in rendered
    assert "{{ $labels.gen_ai_request_model }}" in rendered


def test_the_template_reads_every_threshold_from_values() -> None:
    template = (REPO_ROOT / HELM_TEMPLATE_PATH).read_text()
    assert "{{ .Values.alerts.thresholds.latencyP95Seconds }}" in template
    assert "{{ .Values.alerts.sidecarJobRegex | quote }}" in template
    # Prometheus templates are escaped for Helm; no raw `{{ $` is left for Helm to choke on.
    assert "{{`{{ $labels.gen_ai_request_model }}`}}" in template
    assert "{{ $" not in template.replace("{{`{{ $", "")


def test_other_values_render_what_the_generator_writes_with_set(tmp_path: Path) -> None:
    overrides: dict[str, float | str] = {
        "latency_p95_seconds": 4.5,
        "availability_slo": 0.999,
        "spend_per_hour_usd": 1500000,
        "min_request_rate": 0.00005,
        "sidecar_job_regex": 'llm/model-sidecar\\..*|"quoted"',
        "runbook_url": "https://wiki.example.com/llm/runbooks.md",
    }
    chart = make_chart(tmp_path / "chart", {"alerts": helm_values(overrides)}, RAW)
    rendered = render(chart)
    assert rendered == rule_file(overrides)
    assert "p95_rate5m > 4.5\n" in rendered
    assert "> 1.5e+06\n" in rendered
    assert 'up{job=~"llm/model-sidecar\\\\..*|\\"quoted\\""} == 0' in rendered


def test_values_given_at_install_time_override_the_chart_defaults(default_chart: Path) -> None:
    rendered = render(default_chart, {"alerts": {"thresholds": {"ttftP95Seconds": 2}}})
    assert rendered == rule_file({"ttft_p95_seconds": 2})


def test_the_rendered_prometheusrule_spec_holds_the_rule_groups(tmp_path: Path) -> None:
    chart = make_chart(tmp_path / "chart", {"alerts": helm_values()}, TEMPLATE)
    spec = yaml.safe_load(render(chart))["spec"]
    assert spec == yaml.safe_load((REPO_ROOT / RULES_PATH).read_text())


@pytest.mark.parametrize(
    "number", [0, 1, 30, 0.5, 0.995, 1.25, 14.4, 1e-5, 0.0001, 123456, 1e6, 2.5e7, 1 / 3]
)
def test_go_number_prints_like_helm(tmp_path: Path, number: float) -> None:
    chart = make_chart(tmp_path / "chart", {"number": float(number)}, "{{ .Values.number }}")
    assert render(chart) == go_number(number)
