"""The tunable settings of the rules: names, Helm values keys, defaults and text formatting.

Each setting is written into the rules as text. For the plain rule file that text is the
value formatted exactly as Helm prints it from values.yaml, so the Helm template rendered
with default values is byte for byte the plain rule file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Kind = Literal["number", "ratio", "regex", "url"]

HELM_ROOT = ".Values.alerts"
_URL_PATTERN = re.compile(r"^https?://[^\s\"'\\{}`]+$")


@dataclass(frozen=True, slots=True)
class Setting:
    """One tunable: its `--set` name, its key under `alerts:` in Helm values, its default."""

    name: str
    helm_key: str
    default: float | str
    kind: Kind
    unit: str
    doc: str

    def format(self, value: float | str) -> str:
        """The text the rules carry for `value` (what Helm prints for it)."""
        if self.kind == "regex":
            return go_quote(str(value))
        if self.kind == "url":
            return str(value)
        return go_number(float(value))

    def helm_expression(self) -> str:
        """The Helm template expression that prints this setting from values."""
        path = f"{HELM_ROOT}.{self.helm_key}"
        if self.kind == "regex":
            return "{{ " + path + " | quote }}"
        return "{{ " + path + " }}"

    def parse(self, text: str) -> float | str:
        """A `--set` value for this setting, validated; raises ValueError."""
        if self.kind == "regex":
            if any(ord(char) < 0x20 for char in text):
                raise ValueError(f"{self.name}: control characters are not allowed")
            return text
        if self.kind == "url":
            if not _URL_PATTERN.match(text):
                raise ValueError(f"{self.name}: expected an http(s) URL without quotes or spaces")
            return text
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{self.name}: expected a number, got {text!r}") from None
        if number != number or number in (float("inf"), float("-inf")) or number < 0:
            raise ValueError(f"{self.name}: expected a finite number >= 0, got {text!r}")
        if self.kind == "ratio" and not 0 < number < 1:
            raise ValueError(f"{self.name}: expected a number between 0 and 1, got {text!r}")
        return number


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "latency_p95_seconds", "thresholds.latencyP95Seconds", 30, "number", "s",
        "ModelTailLatencyHigh (p95): call duration p95 per model above this.",
    ),
    Setting(
        "latency_p99_seconds", "thresholds.latencyP99Seconds", 60, "number", "s",
        "ModelTailLatencyHigh (p99): call duration p99 per model above this.",
    ),
    Setting(
        "ttft_p95_seconds", "thresholds.ttftP95Seconds", 10, "number", "s",
        "ModelTimeToFirstTokenHigh: p95 time to first chunk (streams) per model above this.",
    ),
    Setting(
        "availability_slo", "thresholds.availabilitySlo", 0.995, "ratio", "1",
        "ModelErrorBudgetBurn: target share of calls without a provider-side error.",
    ),
    Setting(
        "spend_per_hour_usd", "thresholds.spendPerHourUsd", 20, "number", "USD/h",
        "ModelSpendBurnHigh: spend per model over the last hour above this.",
    ),
    Setting(
        "daily_budget_usd", "thresholds.dailyBudgetUsd", 200, "number", "USD",
        "ModelDailyBudgetAtRisk: projected spend per model over the next 24 h above this.",
    ),
    Setting(
        "retry_ratio", "thresholds.retryRatio", 0.1, "number", "1",
        "ModelRetryStorm: retries (client and sidecar) per call above this.",
    ),
    Setting(
        "low_confidence_ratio", "thresholds.lowConfidenceRatio", 0.2, "ratio", "1",
        "ModelLowConfidenceHigh: share of low-confidence answers above this.",
    ),
    Setting(
        "not_repeatable_ratio", "thresholds.notRepeatableRatio", 0.1, "ratio", "1",
        "ModelOutputNotRepeatable: share of temperature-0 repeats that differ above this.",
    ),
    Setting(
        "candidate_latency_ratio", "thresholds.candidateLatencyRatio", 1.25, "number", "1",
        "CandidateModelWorse: candidate p95 / control p95 above this.",
    ),
    Setting(
        "candidate_error_ratio_increase", "thresholds.candidateErrorRatioIncrease",
        0.02, "ratio", "1",
        "CandidateModelWorse: candidate error ratio minus control error ratio above this.",
    ),
    Setting(
        "candidate_cost_ratio", "thresholds.candidateCostRatio", 1.5, "number", "1",
        "CandidateModelWorse: candidate cost per call / control cost per call above this.",
    ),
    Setting(
        "telemetry_drop_rate", "thresholds.telemetryDropRate", 0, "number", "items/s",
        "ModelSidecarTelemetryDropping: dropped telemetry items per second above this.",
    ),
    Setting(
        "min_request_rate", "thresholds.minRequestRate", 0.1, "number", "calls/s",
        "Low-traffic guard: ratio and quantile alerts fire only at or above this call rate.",
    ),
    Setting(
        "min_repeat_checks", "thresholds.minRepeatChecks", 10, "number", "checks/h",
        "Low-traffic guard of ModelOutputNotRepeatable: repeat checks in the last hour.",
    ),
    Setting(
        "sidecar_job_regex", "sidecarJobRegex", ".*model-sidecar.*", "regex", "",
        "ModelSidecarDown: regex on the `job` label of the sidecar's scrape targets.",
    ),
    Setting(
        "runbook_url", "runbookUrl",
        "https://github.com/model-sidecar/model-sidecar/blob/main/alerts/runbooks.md",
        "url", "",
        "Base of every alert's runbook_url (the alert's anchor is appended).",
    ),
)  # fmt: skip


def setting_named(name: str) -> Setting:
    """The setting called `name` (its `--set` name); raises KeyError listing the valid ones."""
    for setting in SETTINGS:
        if setting.name == name:
            return setting
    valid = ", ".join(setting.name for setting in SETTINGS)
    raise KeyError(f"unknown setting {name!r}; valid: {valid}")


def resolve(overrides: Mapping[str, float | str] | None = None) -> dict[str, float | str]:
    """Defaults with `overrides` (by `--set` name) applied; unknown names raise KeyError."""
    values: dict[str, float | str] = {setting.name: setting.default for setting in SETTINGS}
    for name, value in (overrides or {}).items():
        setting_named(name)
        values[name] = value
    return values


def parse_assignments(assignments: list[str]) -> dict[str, float | str]:
    """`name=value` strings (from `--set`) as validated overrides; raises ValueError/KeyError."""
    overrides: dict[str, float | str] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep:
            raise ValueError(f"expected name=value, got {assignment!r}")
        setting = setting_named(name.strip())
        overrides[setting.name] = setting.parse(text.strip())
    return overrides


def plain_texts(values: Mapping[str, float | str]) -> dict[str, str]:
    """Setting name → the text the plain rule file carries for its value."""
    return {setting.name: setting.format(values[setting.name]) for setting in SETTINGS}


def helm_values(values: Mapping[str, float | str] | None = None) -> dict[str, object]:
    """The `alerts:` block of Helm values holding `values` (defaults when None)."""
    resolved = resolve(values)
    tree: dict[str, object] = {}
    for setting in SETTINGS:
        node = tree
        *parents, leaf = setting.helm_key.split(".")
        for parent in parents:
            child = node.setdefault(parent, {})
            assert isinstance(child, dict)
            node = child
        node[leaf] = resolved[setting.name]
    return tree


def helm_values_schema() -> dict[str, object]:
    """A JSON schema fragment for the `alerts:` settings in values.schema.json."""

    def leaf(setting: Setting) -> dict[str, object]:
        if setting.kind in ("regex", "url"):
            return {"type": "string", "minLength": 1, "description": setting.doc}
        bounds: dict[str, object] = {"minimum": 0}
        if setting.kind == "ratio":
            bounds = {"exclusiveMinimum": 0, "exclusiveMaximum": 1}
        return {"type": "number", **bounds, "description": setting.doc}

    root: dict[str, object] = {"type": "object", "properties": {}}
    for setting in SETTINGS:
        node = root
        *parents, name = setting.helm_key.split(".")
        for parent in parents:
            properties = node["properties"]
            assert isinstance(properties, dict)
            node = properties.setdefault(parent, {"type": "object", "properties": {}})
        properties = node["properties"]
        assert isinstance(properties, dict)
        properties[name] = leaf(setting)
    return root


def go_number(value: float) -> str:
    """`value` as Go's fmt prints a float64 (%v): how Helm prints a number from values.yaml."""
    if value == 0:
        return "0"
    decimal = Decimal(repr(float(value))).normalize()
    exponent = decimal.adjusted()
    if -4 <= exponent < 6:
        return format(decimal, "f")
    sign, digits, _ = decimal.as_tuple()
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"


def go_quote(text: str) -> str:
    """`text` as a double-quoted string the way Helm's `quote` (Go %q) and PromQL write it."""
    return json.dumps(text, ensure_ascii=False)
