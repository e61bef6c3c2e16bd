"""Build the rule groups and every generated file: the plain rule file, the Helm template,
the runbooks and the README section."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from alerts import docs, emit
from alerts.fleet_alerts import experiment_alerts, sidecar_alerts
from alerts.model import RuleGroup
from alerts.model_alerts import error_budget_alerts, latency_alerts, quality_alerts, spend_alerts
from alerts.quota import quota_alerts, quota_rules
from alerts.recording import (
    DEFAULT_TIMING,
    Timing,
    arm_rules,
    cost_rules,
    latency_rules,
    request_rules,
    retry_rules,
)
from alerts.rollout_alerts import rollout_alerts
from alerts.settings import plain_texts, resolve

REPO_ROOT = Path(__file__).resolve().parent.parent
RULES_PATH = Path("alerts/rules.yaml")
HELM_TEMPLATE_PATH = Path("helm/model-sidecar/files/alert-rules.yaml.tpl")
RUNBOOKS_PATH = Path("alerts/runbooks.md")
README_PATH = Path("alerts/README.md")
# The rules with the low-traffic guards off: promtool tests of the zero-denominator guards.
UNGUARDED_RULES_PATH = Path("alerts/tests/rules-no-traffic-guard.yaml")
UNGUARDED = {"min_request_rate": 0.0, "min_repeat_checks": 0.0}


def rule_groups(timing: Timing = DEFAULT_TIMING) -> tuple[RuleGroup, ...]:
    """Every rule group, with setting markers where the settings' texts go."""
    t = emit.placeholders()
    return (
        RuleGroup("model-sidecar.errors", request_rules(timing) + error_budget_alerts(t, timing)),
        RuleGroup("model-sidecar.latency", latency_rules(timing) + latency_alerts(t, timing)),
        RuleGroup("model-sidecar.spend", cost_rules(timing) + spend_alerts(t, timing)),
        RuleGroup("model-sidecar.quality", retry_rules(timing) + quality_alerts(t, timing)),
        RuleGroup("model-sidecar.experiments", arm_rules(timing) + experiment_alerts(t, timing)),
        RuleGroup("model-sidecar.sidecar", sidecar_alerts(t, timing)),
        # Provider quota headroom (issue #21).
        RuleGroup("model-sidecar.quota", quota_rules() + quota_alerts(t, timing.for_("5m"))),
        RuleGroup("model-sidecar.rollouts", rollout_alerts(t, timing)),
    )


def rule_file(
    overrides: Mapping[str, float | str] | None = None, timing: Timing = DEFAULT_TIMING
) -> str:
    """The plain Prometheus rule file with the defaults, `overrides` (by `--set` name) applied."""
    skeleton = emit.rule_file_skeleton(rule_groups(timing))
    return emit.plain_rule_file(skeleton, plain_texts(resolve(overrides)))


def helm_template() -> str:
    """The rule file as a Helm template reading every setting from `.Values.alerts`."""
    return emit.helm_rule_template(emit.rule_file_skeleton(rule_groups()))


def generated_files() -> dict[Path, str]:
    """Every generated file (path relative to the repository root) and its content."""
    groups = rule_groups()
    return {
        RULES_PATH: rule_file(),
        HELM_TEMPLATE_PATH: helm_template(),
        RUNBOOKS_PATH: docs.runbooks_markdown(),
        README_PATH: docs.readme_markdown(groups),
        UNGUARDED_RULES_PATH: rule_file(UNGUARDED),
    }


def stale_files(root: Path = REPO_ROOT) -> list[Path]:
    """Generated files under `root` whose content differs from what the code generates."""
    stale = []
    for path, content in generated_files().items():
        target = root / path
        if not target.exists() or target.read_text(encoding="utf-8") != content:
            stale.append(path)
    return stale


def write_files(root: Path = REPO_ROOT) -> list[Path]:
    """(Re)write every generated file under `root`; return the paths that changed."""
    changed = stale_files(root)
    for path, content in generated_files().items():
        if path in changed:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
    return changed
