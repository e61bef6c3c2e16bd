"""Recording rules: the per-model and per-experiment-arm rates, ratios and quantiles that
alerts (and dashboards) share. Names follow `level:metric:operations`; level `model` = by
(gen_ai_provider_name, gen_ai_request_model), `experiment_variant` = by (experiment, variant).
Each group records what its own alerts read, so an alert sees the value recorded in the same
evaluation (rules within a group run in order; groups run independently)."""

from __future__ import annotations

from dataclasses import dataclass

from alerts import series as s
from alerts.model import ARM_LABELS, MODEL_LABELS, RecordingRule
from sidecar.experiments import promql

# Calls that failed on the provider's side (or on the way to it): the definition the
# sidecars' rollout gates use too (one definition for alerts and fleet verdicts).
ERROR_MATCHERS = promql.ERROR_MATCHERS
# Recording rules count failed calls under this name (not a metric of its own).
_REQUEST_ERRORS = s.base(s.REQUESTS).replace("_requests", "_request_errors")
# Record names of the per-arm series the experiment alerts compare.
ARM_REQUESTS = f"{s.base(s.REQUESTS)}:rate"
ARM_ERROR_RATIO = f"{_REQUEST_ERRORS}:ratio_rate"
ARM_DURATION_P95 = f"{s.V1_41_DURATION}:p95_rate"
ARM_COST_PER_CALL = f"{s.base(s.COST)}_per_call:ratio_rate"
# The windows of the multiwindow, multi-burn-rate error budget alerts.
BURN_WINDOWS = ("5m", "30m", "1h", "6h")


@dataclass(frozen=True, slots=True)
class Timing:
    """Windows and `for:` durations; tests shrink them, users keep the defaults."""

    # Window of the latency quantiles, retry ratio and experiment comparisons.
    window: str = "5m"
    # When set, every alert's `for:` (a test copy uses a few seconds).
    for_override: str | None = None

    def for_(self, default: str) -> str:
        """The `for:` duration of an alert whose production value is `default`."""
        return self.for_override if self.for_override is not None else default


DEFAULT_TIMING = Timing()


def requests_rate(window: str) -> str:
    """Record name: calls per second per model over `window`."""
    return f"model:{s.base(s.REQUESTS)}:rate{window}"


def error_ratio(window: str) -> str:
    """Record name: share of calls per model that failed on the provider's side."""
    return f"model:{_REQUEST_ERRORS}:ratio_rate{window}"


def duration_quantile(quantile: str, window: str) -> str:
    """Record name: call duration quantile (e.g. "p95") per model."""
    return f"model:{s.V1_41_DURATION}:{quantile}_rate{window}"


def ttft_p95(window: str) -> str:
    """Record name: p95 time to first chunk per model (streaming calls)."""
    return f"model:{s.V1_41_FIRST_CHUNK}:p95_rate{window}"


def cost_rate(window: str) -> str:
    """Record name: spend in USD per second per model."""
    return f"model:{s.base(s.COST)}:rate{window}"


def retry_ratio(window: str) -> str:
    """Record name: retries per call per model."""
    return f"model:{s.base(s.RETRIES)}:ratio_rate{window}"


def arm(metric: str, window: str) -> str:
    """Record name of a per-experiment-arm series (`metric` like "requests:rate")."""
    return f"experiment_variant:{metric}{window}"


def _by(labels: str, inner: str) -> str:
    return f"sum by ({labels}) ({inner})"


def _ratio(numerator: str, denominator: str) -> str:
    # A missing numerator means zero (not no ratio); a zero denominator means no ratio.
    return f"(\n  {numerator}\nor\n  {denominator} * 0\n)\n/\n({denominator} > 0)"


def _quantile(q: str, labels: str, metric: s.Series, window: str, matchers: str = "") -> str:
    """The quantile of a histogram (in whichever generation is present) per `labels`."""
    selector = f"{{name}}{{{{{matchers}}}}}" if matchers else "{name}"
    buckets = s.each(metric, "_bucket", f"rate({selector}[{window}])")
    return f"histogram_quantile({q}, sum by (le, {labels}) ({buckets}))"


def request_rules(timing: Timing) -> tuple[RecordingRule, ...]:
    """Per-model call rates, error rates and error ratios over every window alerts use."""
    rules: list[RecordingRule] = []
    for w in dict.fromkeys((timing.window, *BURN_WINDOWS)):
        requests = requests_rate(w)
        errors = f"model:{_REQUEST_ERRORS}:rate{w}"
        selector = f"{s.REQUESTS}{{{ERROR_MATCHERS}}}"
        rules += [
            RecordingRule(requests, _by(MODEL_LABELS, f"rate({s.REQUESTS}[{w}])")),
            RecordingRule(errors, _by(MODEL_LABELS, f"rate({selector}[{w}])")),
            RecordingRule(error_ratio(w), _ratio(errors, requests)),
        ]
    return tuple(rules)


def latency_rules(timing: Timing) -> tuple[RecordingRule, ...]:
    """Per-model call duration p95 and p99, and time to first chunk p95."""
    w = timing.window
    duration, ttft = s.DURATION, s.FIRST_CHUNK
    return (
        RecordingRule(duration_quantile("p95", w), _quantile("0.95", MODEL_LABELS, duration, w)),
        RecordingRule(duration_quantile("p99", w), _quantile("0.99", MODEL_LABELS, duration, w)),
        RecordingRule(ttft_p95(w), _quantile("0.95", MODEL_LABELS, ttft, w)),
    )


def cost_rules(timing: Timing) -> tuple[RecordingRule, ...]:
    """Per-model spend rates (USD per second)."""
    return tuple(
        RecordingRule(cost_rate(w), _by(MODEL_LABELS, f"rate({s.COST}[{w}])"))
        for w in dict.fromkeys((timing.window, "1h"))
    )


def retry_rules(timing: Timing) -> tuple[RecordingRule, ...]:
    """Per-model retries per call (the call rate computed here, not read from another group)."""
    w = timing.window
    retries = f"model:{s.base(s.RETRIES)}:rate{w}"
    calls = _by(MODEL_LABELS, f"rate({s.REQUESTS}[{w}])")
    return (
        RecordingRule(retries, _by(MODEL_LABELS, f"rate({s.RETRIES}[{w}])")),
        RecordingRule(retry_ratio(w), f"{retries}\n/\n({calls} > 0)"),
    )


def arm_rules(timing: Timing) -> tuple[RecordingRule, ...]:
    """Per-experiment-arm recording rules (calls that took part in an experiment only)."""
    w = timing.window
    in_experiment = 'experiment!=""'
    requests = arm(ARM_REQUESTS, w)
    errors = arm(f"{_REQUEST_ERRORS}:rate", w)
    cost = arm(f"{s.base(s.COST)}:rate", w)
    return (
        RecordingRule(requests, _by(ARM_LABELS, f"rate({s.REQUESTS}{{{in_experiment}}}[{w}])")),
        RecordingRule(
            errors,
            _by(ARM_LABELS, f"rate({s.REQUESTS}{{{in_experiment}, {ERROR_MATCHERS}}}[{w}])"),
        ),
        RecordingRule(arm(ARM_ERROR_RATIO, w), _ratio(errors, requests)),
        RecordingRule(
            arm(ARM_DURATION_P95, w),
            _quantile("0.95", ARM_LABELS, s.DURATION, w, in_experiment),
        ),
        RecordingRule(cost, _by(ARM_LABELS, f"rate({s.COST}{{{in_experiment}}}[{w}])")),
        RecordingRule(arm(ARM_COST_PER_CALL, w), f"{cost}\n/\n({requests} > 0)"),
    )
