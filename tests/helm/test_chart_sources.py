"""One source of truth: the chart's PrometheusRule and dashboards equal alerts/ and dashboards/."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import helm_python as helm
import yaml

from tests.helpers.chart import CHART_DIR, REPO, Rendered, render

Render = Callable[[str], Rendered]
TEMPLATE = CHART_DIR / "files" / "alert-rules.yaml.tpl"


def _dashboard_sources() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted((REPO / "dashboards").glob("*.json"))}


def test_prometheus_rule_with_default_values_equals_alerts_rules_yaml(rendered: Render) -> None:
    rule = rendered("prometheus-rule").one("PrometheusRule")
    expected = yaml.safe_load((REPO / "alerts" / "rules.yaml").read_text())
    assert expected["groups"], "alerts/rules.yaml has no groups"
    assert rule["spec"] == expected


def test_prometheus_rule_carries_the_monitoring_labels(rendered: Render) -> None:
    rule = rendered("everything").one("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_thresholds_come_from_values(chart: helm.Chart) -> None:
    def alert_expr(values: dict[str, Any], alert: str) -> str:
        out = render(chart, {"monitoring": {"prometheusRule": {"enabled": True}}, **values})
        groups = out.one("PrometheusRule")["spec"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        (found,) = [rule for rule in rules if rule.get("alert") == alert]
        return str(found["expr"])

    default = alert_expr({}, "ModelSpendBurnHigh")
    changed = alert_expr({"alerts": {"thresholds": {"spendPerHourUsd": 7.5}}}, "ModelSpendBurnHigh")
    assert "> 20" in default and "> 7.5" in changed


def _keys(mapping: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        keys |= _keys(value, f"{path}.") if isinstance(value, dict) else {path}
    return keys


def test_every_alert_setting_has_a_default_and_a_schema_entry() -> None:
    used = set(re.findall(r"\.Values\.alerts\.([A-Za-z0-9_.]+)", TEMPLATE.read_text()))
    assert used, "the rule template uses no .Values.alerts settings"
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["alerts"]
    assert _keys(values) == used
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    alerts_schema = schema["properties"]["alerts"]
    for key in used:
        node = alerts_schema
        for part in key.split("."):
            node = node["properties"][part]
        assert node["type"] in ("number", "string"), key


def test_dashboard_files_in_the_chart_equal_dashboards_dir() -> None:
    in_chart = {
        path.name: path.read_text() for path in sorted((CHART_DIR / "files/dashboards").glob("*"))
    }
    assert in_chart == _dashboard_sources()


def test_dashboard_config_maps_equal_dashboards_dir(rendered: Render) -> None:
    sources = _dashboard_sources()
    assert sources, "no dashboards/*.json"
    maps = rendered("dashboards").of_kind("ConfigMap")
    dashboards = [cm for cm in maps if "grafana_dashboard" in cm["metadata"]["labels"]]
    assert len(dashboards) == len(sources)
    found: dict[str, str] = {}
    for config_map in dashboards:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "LLM"}
        ((key, text),) = config_map["data"].items()
        found[key] = text
    assert found.keys() == sources.keys()
    for key, text in found.items():
        assert text == sources[key].rstrip("\n")
        assert json.loads(text)["title"]
