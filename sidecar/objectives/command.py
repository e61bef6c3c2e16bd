"""`model-sidecar slo-rules`: the Prometheus rules of a config's `slos:` and `budgets:`, as a
rule file or as Helm values for the chart's PrometheusRule."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from sidecar.config.models import SidecarConfig
from sidecar.objectives.budget_rules import budget_group
from sidecar.objectives.rulefile import Group, rule_file
from sidecar.objectives.slo_rules import ThresholdError, slo_groups


def groups_for(config: SidecarConfig) -> tuple[Group, ...]:
    """Every generated group of `config`; raises ThresholdError (one line) for a latency
    threshold that is not a bucket boundary."""
    return (*slo_groups(config.slos), budget_group(config.budgets))


def helm_values(config: SidecarConfig) -> str:
    """The rules as values for the chart: `monitoring.prometheusRule.extraGroups`."""
    groups = yaml.safe_load(rule_file(groups_for(config)))["groups"]
    values = {"monitoring": {"prometheusRule": {"extraGroups": groups}}}
    return yaml.safe_dump(values, sort_keys=False, width=100)


def run(config: SidecarConfig, out: str, helm: bool) -> int:
    """Write the rules (`out` "-" = stdout); 1 with one plain line when a threshold is off the
    buckets, 0 otherwise."""
    try:
        text = helm_values(config) if helm else rule_file(groups_for(config))
    except ThresholdError as error:
        print(f"model-sidecar slo-rules: {error}", file=sys.stderr)
        return 1
    if not config.slos and not config.budgets:
        print("model-sidecar slo-rules: the config has no slos: and no budgets:", file=sys.stderr)
    if out == "-":
        sys.stdout.write(text)
    else:
        Path(out).write_text(text, encoding="utf-8")
    return 0
