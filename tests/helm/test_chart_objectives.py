"""The chart carries an operator's SLOs, attribution and budgets: the config passes into the
sidecar's ConfigMap, and the rules `model-sidecar slo-rules --helm-values` prints join the
shipped groups in the PrometheusRule (which still validates against its CRD schema)."""

from __future__ import annotations

import helm_python as helm
import pytest
import yaml

from sidecar.config.load import load_config
from sidecar.config.models import SidecarConfig
from sidecar.objectives.command import helm_values
from tests.helpers.chart import REPO, render, validate_manifest

OBJECTIVES = REPO / "alerts" / "tests" / "objectives" / "config.yaml"


def test_slo_and_budget_rules_join_the_prometheus_rule(chart: helm.Chart) -> None:
    objectives = yaml.safe_load(OBJECTIVES.read_text())
    values = yaml.safe_load(helm_values(load_config(OBJECTIVES)))
    values["monitoring"]["prometheusRule"]["enabled"] = True
    out = render(chart, {**values, "config": objectives})
    rule = out.one("PrometheusRule")
    validate_manifest(rule)
    names = [group["name"] for group in rule["spec"]["groups"]]
    shipped = [
        g["name"] for g in yaml.safe_load((REPO / "alerts" / "rules.yaml").read_text())["groups"]
    ]
    generated = [g["name"] for g in values["monitoring"]["prometheusRule"]["extraGroups"]]
    assert names == shipped + generated
    assert "model-sidecar.budgets" in generated and "model-sidecar.slo.chat-ttft" in generated
    alerts = {r.get("alert") for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"ProviderQuotaExhaustionSoon", "SLOErrorBudgetBurn", "CostBudgetAtRisk"} <= alerts
    # The sidecar reads the same objectives from its ConfigMap.
    config_map = (
        out.one("ConfigMap", "sidecar")
        if False
        else next(doc for doc in out.of_kind("ConfigMap") if "config.yaml" in doc.get("data", {}))
    )
    config = SidecarConfig.model_validate(yaml.safe_load(config_map["data"]["config.yaml"]))
    assert config.attribution is not None and config.attribution.header == "x-team"
    assert [slo.name for slo in config.slos] == ["calls-succeed", "chat-ttft"]


def test_extra_groups_must_be_rule_groups(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmValuesError, match=r"missing property 'name'"):
        render(
            chart,
            {"monitoring": {"prometheusRule": {"enabled": True, "extraGroups": [{"rules": []}]}}},
        )
