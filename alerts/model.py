"""The shapes the generator builds: recording rules, alert rules, rule groups, runbooks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RecordingRule:
    """`record: name` with its PromQL expression (and optional static labels)."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alerting rule; its runbook_url is added when emitted (the alert name's anchor)."""

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    labels: Mapping[str, str] = field(default_factory=dict)


Rule = RecordingRule | AlertRule


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """A Prometheus rule group: evaluated together, in order."""

    name: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Runbook:
    """What an alert means, the first three things to check, and how to stop the loss."""

    alert: str
    meaning: str
    checks: tuple[str, str, str]
    stop_loss: str

    @property
    def anchor(self) -> str:
        """The Markdown heading anchor of this runbook's section (GitHub style)."""
        return self.alert.lower()


# The labels every per-model rule keeps (the aggregation level `model:` in record names).
MODEL_LABELS = "gen_ai_provider_name, gen_ai_request_model"
# The labels of per-experiment-arm rules (level `experiment_variant:`).
ARM_LABELS = "experiment, variant"
