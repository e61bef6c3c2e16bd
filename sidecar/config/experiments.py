"""The `experiments:`, `feedback:` and `audit:` sections of the config file.

Cross-references (upstream names, protocols) are checked by `check_experiments`, which
`SidecarConfig` runs once every upstream is known, so each error names what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple, Protocol

from pydantic import BeforeValidator, Field, field_validator, model_validator

from sidecar.config.strict import Strict
from sidecar.protocols.registry import protocol_for_path

# Experiment names and variants become label values: short, no spaces, no quotes.
LABEL_VALUE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
WEIGHT_TOTAL = 100.0
CONTROL = "control"
CANDIDATE = "candidate"
SHADOW = "shadow"
# Duration suffixes a rollout's durations may carry ("10m"); a bare number is seconds.
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _seconds(value: Any) -> Any:
    """ "10m", "30s", "1h", "250ms" or a number of seconds, as seconds."""
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise ValueError(f"{value!r} is not a duration: use e.g. 30s, 10m, 1h or seconds")
        return float(found.group(1)) * _DURATION_UNITS[found.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(_seconds)]


def _label_value(value: str, what: str) -> str:
    if not LABEL_VALUE.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-63 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit (it becomes a label value)"
        )
    return value


class MatchConfig(Strict):
    """Which calls take part: the requested model, optionally only on a path or an upstream."""

    model: str = Field(min_length=1, description="The model the app asks for (the control).")
    path: str | None = Field(
        default=None, description="Only calls to this path, e.g. /v1/chat/completions."
    )
    upstream: str | None = Field(default=None, description="Only calls routed to this upstream.")


class ControlConfig(Strict):
    """The control arm: the model the app asked for, unchanged."""

    weight: float = Field(
        default=WEIGHT_TOTAL,
        ge=0,
        le=WEIGHT_TOTAL,
        description="split: percent of calls kept on the control (all weights sum to 100); "
        "unused in shadow mode.",
    )


class CandidateConfig(Strict):
    """A candidate arm: another model, optionally on another upstream of the same protocol."""

    model: str = Field(
        min_length=1, description="The model sent instead (split) or in the copy (shadow)."
    )
    upstream: str | None = Field(
        default=None, description="Default: the upstream the call was routed to."
    )
    weight: float = Field(
        default=0.0,
        ge=0,
        le=WEIGHT_TOTAL,
        description="split: percent of calls sent to it; shadow: percent of calls copied to it.",
    )
    variant: str | None = Field(
        default=None,
        description="Label value; default `candidate` (`shadow` in shadow mode), numbered "
        "`-1`, `-2`, … when there are several.",
    )


class ShadowConfig(Strict):
    """Limits on the background copies of shadow mode."""

    max_concurrency: int = Field(default=8, gt=0, description="Shadow calls in flight at once.")
    max_per_second: float = Field(default=10.0, gt=0, description="Shadow calls started per s.")
    max_pending_pairs: int = Field(
        default=1000, gt=0, description="Halves of a pair remembered while the other runs."
    )


class StopLossConfig(Strict):
    """When a candidate is rolled back: rolling windows per arm, a minimum, and limits."""

    window_calls: int = Field(default=200, gt=0, description="Calls per arm in the window.")
    window_seconds: float | None = Field(
        default=None, gt=0, description="Also forget calls older than this."
    )
    min_calls: int = Field(default=30, gt=0, description="Calls per arm before judging.")
    max_p95_ratio: float | None = Field(
        default=1.5, gt=0, description="Candidate p95 duration / control p95 duration."
    )
    min_p95_increase_seconds: float = Field(
        default=0.25,
        ge=0,
        description="The p95 ratio counts only when the candidate's p95 is also this much "
        "above the control's (a pause of a few ms must not trip fast calls).",
    )
    max_error_ratio_increase: float | None = Field(
        default=0.05, ge=0, le=1, description="Candidate error ratio minus the control's."
    )
    max_cost_ratio: float | None = Field(
        default=None, gt=0, description="Candidate cost per call / control cost per call."
    )
    max_low_confidence_increase: float | None = Field(
        default=None, ge=0, le=1, description="Candidate low-confidence share minus control's."
    )
    max_ttft_p95_ratio: float | None = Field(
        default=None,
        gt=0,
        description="Rollouts: candidate p95 time to first chunk / the control's (streams).",
    )
    max_negative_feedback_increase: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Rollouts: candidate share of feedback `rejected` or `hallucination` minus "
        "the control's (judged only where feedback arrives).",
    )

    @model_validator(mode="after")
    def _window(self) -> StopLossConfig:
        if self.min_calls > self.window_calls:
            raise ValueError(
                f"min_calls ({self.min_calls}) is larger than window_calls "
                f"({self.window_calls}): the stop-loss could never judge"
            )
        return self


class RolloutPrometheusConfig(Strict):
    """Where the fleet verdict of a rollout is read (decision: prometheus)."""

    url: str = Field(
        min_length=1, description="Base URL of the Prometheus that scrapes every sidecar."
    )
    timeout: Seconds = Field(default=5.0, gt=0, description="Per query: seconds or 5s.")
    lookback: Seconds = Field(
        default=600.0,
        gt=0,
        description="How far back a joining sidecar looks for the fleet's state: seconds or 10m.",
    )


class RolloutConfig(Strict):
    """A staged rollout: the candidate's share grows step by step while every gate holds."""

    steps: list[float] = Field(
        default_factory=lambda: [1.0, 5.0, 25.0, 50.0, 100.0],
        min_length=1,
        description="Percent of matching calls sent to the candidate at each step, increasing.",
    )
    min_calls: int = Field(
        default=200,
        gt=0,
        description="Calls per arm at a step before its gates are judged (fleet-wide with "
        "decision: prometheus).",
    )
    min_duration: Seconds = Field(
        default=600.0,
        ge=0,
        description="Least time at a step before it advances (to the nearest evaluation): "
        "seconds or 30s, 10m, 1h.",
    )
    on_complete: Literal["promote", "hold"] = Field(
        default="promote",
        description="After the last step holds: promote (state promoted) or hold at the last "
        "step until an admin promotes.",
    )
    decision: Literal["local", "prometheus"] = Field(
        default="local",
        description="local: each sidecar judges its own calls; prometheus: every sidecar "
        "reads the same fleet-wide verdict from Prometheus.",
    )
    evaluation_interval: Seconds = Field(
        default=15.0,
        gt=0,
        description="How often the gates are evaluated, on the wall clock's multiples of it (the "
        "pods of a fleet evaluate together): seconds or 15s, 1m.",
    )
    prometheus: RolloutPrometheusConfig | None = Field(
        default=None, description="Required with decision: prometheus."
    )

    @model_validator(mode="after")
    def _steps(self) -> RolloutConfig:
        previous = 0.0
        for step in self.steps:
            if not previous < step <= WEIGHT_TOTAL:
                raise ValueError(
                    f"steps {self.steps} must increase, each above 0 and at most "
                    f"{WEIGHT_TOTAL:g} (percent of matching calls)"
                )
            previous = step
        if self.decision == "prometheus" and self.prometheus is None:
            raise ValueError(
                "decision: prometheus needs prometheus.url (the Prometheus that scrapes "
                "every sidecar of the fleet)"
            )
        return self


class ExperimentConfig(Strict):
    """One experiment: which calls, the control, the candidates, the mode and a stop-loss."""

    name: str = Field(
        description="The `experiment` label value: 1-63 of a-z, 0-9, '.', '_', '-'; unique."
    )
    mode: Literal["split", "shadow"] = Field(
        default="split",
        description="split: a share of the calls goes to a candidate; shadow: calls are "
        "copied to candidates in the background, the app gets the control's answer.",
    )
    match: MatchConfig = Field(description="Which calls take part.")
    control: ControlConfig = Field(
        default_factory=ControlConfig, description="The model the app asked for."
    )
    candidates: list[CandidateConfig] = Field(
        min_length=1, description="The models compared with the control (at least one)."
    )
    key_header: str | None = Field(
        default=None,
        description="Sticky assignment by this request header (hashed, never stored); "
        "random per call without it.",
    )
    shadow: ShadowConfig = Field(
        default_factory=ShadowConfig, description="Limits on shadow copies (shadow mode)."
    )
    stop_loss: StopLossConfig | None = Field(
        default=None,
        description="When to roll a candidate back to weight 0; without it, never. With a "
        "rollout: the limits of its gates (defaults when absent).",
    )
    rollout: RolloutConfig | None = Field(
        default=None,
        description="Widen the candidate's share in steps while the gates hold (split mode, "
        "one candidate); its weight comes from the current step. See docs/rollouts.md.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _label_value(value, "experiment name")

    @model_validator(mode="after")
    def _arms(self) -> ExperimentConfig:
        role = CANDIDATE if self.mode == "split" else SHADOW
        several = len(self.candidates) > 1
        seen: set[str] = set()
        for index, candidate in enumerate(self.candidates, start=1):
            if candidate.variant is None:
                candidate.variant = f"{role}-{index}" if several else role
            variant = _label_value(candidate.variant, "variant")
            if not variant.startswith(role):
                raise ValueError(
                    f"variant {variant!r} must start with {role!r} in {self.mode} mode "
                    "(dashboards and alerts select candidate arms by that prefix)"
                )
            if variant in seen:
                raise ValueError(f"variant {variant!r} is used by two candidates")
            seen.add(variant)
        if self.rollout is not None:
            if self.mode != "split" or several:
                raise ValueError("a rollout needs split mode and exactly one candidate")
            # The step sets the candidate's share; the configured weights start at 0.
            self.candidates[0].weight = 0.0
            self.control.weight = WEIGHT_TOTAL
        return self


class FeedbackConfig(Strict):
    """POST /_sidecar/feedback: outcomes of calls, found by their x-model-sidecar-request-id."""

    enabled: bool = Field(default=True, description="Accept POST /_sidecar/feedback.")
    max_request_ids: int = Field(
        default=10000, gt=0, description="Request ids remembered (LRU) for feedback."
    )


class AuditConfig(Strict):
    """An opt-in JSON-lines sample of request/response pairs for human audits."""

    sample_rate: float = Field(default=0.0, ge=0, le=1, description="Share of calls written.")
    path: str = Field(
        default="model-sidecar-audit.jsonl",
        description="The JSON-lines file the sample is appended to.",
    )
    max_bytes: int = Field(default=10 * 1024 * 1024, gt=0, description="Rotate past this size.")
    backups: int = Field(default=3, ge=0, description="Rotated files kept (.1, .2, …).")
    redact: list[str] = Field(
        default_factory=list,
        description="Regular expressions whose matches are replaced by [REDACTED].",
    )
    max_chars: int = Field(default=16384, gt=0, description="Characters kept per text field.")

    @field_validator("redact")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redact pattern {pattern!r} is not a regex: {exc}") from None
        return value


class NamedUpstream(Protocol):
    """What the cross-checks need to know of an upstream."""

    @property
    def protocol(self) -> str: ...


class Problem(NamedTuple):
    """One problem a cross-check found: where it is in the file (for its line) and the whole
    explanation, which starts by saying where in words."""

    loc: tuple[str | int, ...]
    text: str


def check_experiments(
    experiments: list[ExperimentConfig], upstreams: Mapping[str, NamedUpstream]
) -> list[Problem]:
    """Every error across sections: weights, unknown upstreams, protocols, duplicates."""
    errors: list[Problem] = []
    names: set[str] = set()
    matches: dict[tuple[str, str | None, str | None], str] = {}
    for index, experiment in enumerate(experiments):
        at = ("experiments", index)
        where = f"experiments.{index} ({experiment.name})"
        weights = _weights_error(experiment)
        if weights:
            errors.append(Problem(at, f"{where}: {weights}"))
        if experiment.name in names:
            errors.append(Problem((*at, "name"), f"{where}: another experiment has the same name"))
        names.add(experiment.name)
        match = experiment.match
        key = (match.model, match.path, match.upstream)
        if key in matches:
            errors.append(
                Problem(
                    (*at, "match"),
                    f"{where}: matches the same calls as experiment {matches[key]!r}",
                )
            )
        matches[key] = experiment.name
        known = ", ".join(sorted(upstreams))
        if match.upstream is not None and match.upstream not in upstreams:
            errors.append(
                Problem(
                    (*at, "match", "upstream"),
                    f"{where}: match.upstream {match.upstream!r} is not one of: {known}",
                )
            )
            continue
        ours, pinned_by = _control_protocol(match, upstreams)
        for number, candidate in enumerate(experiment.candidates):
            place = f"{where}: candidates.{number} ({candidate.model})"
            spot = (*at, "candidates", number, "upstream")
            if candidate.upstream is None:
                continue
            if candidate.upstream not in upstreams:
                unknown = f"{place}: upstream {candidate.upstream!r} is not one of: {known}"
                errors.append(Problem(spot, unknown))
                continue
            theirs = upstreams[candidate.upstream].protocol
            if ours is None:
                errors.append(
                    Problem(
                        spot,
                        f"{place}: names upstream {candidate.upstream!r}, so the experiment must "
                        "say which protocol its calls speak: set match.upstream or match.path",
                    )
                )
            elif ours != theirs:
                errors.append(
                    Problem(
                        spot,
                        f"{place}: upstream {candidate.upstream!r} speaks {theirs}, but the "
                        f"control's calls ({pinned_by}) speak {ours}: a candidate must use the "
                        "same protocol (the app's request is sent as it is)",
                    )
                )
    return errors


def _weights_error(experiment: ExperimentConfig) -> str:
    """Why the weights of a split experiment do not sum to 100, or ""."""
    if experiment.mode != "split":
        return ""
    weights = [experiment.control.weight, *(c.weight for c in experiment.candidates)]
    if abs(sum(weights) - WEIGHT_TOTAL) <= 1e-6:
        return ""
    parts = " + ".join(
        [f"control {experiment.control.weight:g}"]
        + [f"{c.variant} {c.weight:g}" for c in experiment.candidates]
    )
    return (
        f"weights sum to {sum(weights):g} ({parts}); in split mode they must sum to "
        f"{WEIGHT_TOTAL:g} (percent of calls)"
    )


class ConfigProblems(ValueError):
    """Several independent problems found by one validator, reported one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(problem.text for problem in problems))
        self.problems = problems


def _control_protocol(
    match: MatchConfig, upstreams: Mapping[str, NamedUpstream]
) -> tuple[str | None, str]:
    """The protocol of the matched calls, and what pins it; (None, "") when nothing does."""
    if match.upstream is not None:
        return upstreams[match.upstream].protocol, f"upstream {match.upstream!r}"
    if match.path is not None:
        protocol = protocol_for_path(match.path)
        if protocol is not None:
            return protocol.name, f"path {match.path}"
    return None, ""
