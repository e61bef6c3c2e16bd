"""The PromQL of a rollout's fleet verdict, generated from its gates.

Every sidecar of a fleet evaluates these same expressions (fleet.py), so every pod sees the
same verdict. Each returns one series per arm (`variant`), summed over every pod, over the
current step (`window`): counters are read as their growth since the step began (`_growth`),
exact rather than extrapolated, with series born during the step counted in full. The alert
rules (alerts/) use the same definition of a failed call (`ERROR_MATCHERS`).
"""

from __future__ import annotations

from sidecar.config.experiments import CONTROL
from sidecar.telemetry import conventions as defs

# Calls that failed on the provider's side (or on the way to it): every outcome except ok and
# client_cancelled, minus 4xx answers other than 429 (those are the app's own mistakes).
ERROR_MATCHERS = (
    'outcome!~"ok|client_cancelled", http_status_code!~"4([01][0-9]|2[0-8]|[3-9][0-9])"'
)
NEGATIVE_FEEDBACK_MATCHER = 'outcome=~"rejected|hallucination"'

# Evidence names (gates.ArmEvidence fields) → how each is computed per arm.
CALLS = "calls"
ERRORS = "errors"
P95 = "p95"
TTFT_P95 = "ttft_p95"
COST = "cost"
UNPRICED = "unpriced"
MEASURED = "measured"
LOW_CONFIDENCE = "low_confidence"
FEEDBACK = "feedback"
NEGATIVE_FEEDBACK = "negative_feedback"


def _selector(experiment: str, variant: str, extra: str = "") -> str:
    arms = f'experiment="{experiment}", variant=~"{CONTROL}|{variant}"'
    return f"{{{arms}, {extra}}}" if extra else f"{{{arms}}}"


def _growth(series: str, window: str) -> str:
    """How much each counter series grew over `window`: now minus `window` ago, exactly, or its
    whole value when it did not exist then (a series born in the window — the first error of a
    kind — counts in full; `increase()` would drop its first sample). A counter that went down
    (a restarted pod) counts 0."""
    return f"(clamp_min({series} - {series} offset {window}, 0) or {series})"


def _sum(metric: str, selector: str, window: str) -> str:
    return f"sum by (variant) {_growth(metric + selector, window)}"


def _p95(metric: str, selector: str, window: str) -> str:
    growth = _growth(f"{metric}_bucket{selector}", window)
    return f"histogram_quantile(0.95, sum by (variant, le) {growth})"


def evidence_queries(experiment: str, variant: str, window: str) -> dict[str, str]:
    """The per-arm evidence of a step (candidate `variant` and the control) over `window`."""
    arms = _selector(experiment, variant)
    return {
        CALLS: _sum(
            defs.REQUESTS.name,
            _selector(experiment, variant, 'outcome!="client_cancelled"'),
            window,
        ),
        ERRORS: _sum(defs.REQUESTS.name, _selector(experiment, variant, ERROR_MATCHERS), window),
        P95: _p95(defs.OPERATION_DURATION.name, arms, window),
        TTFT_P95: _p95(defs.TIME_TO_FIRST_CHUNK.name, arms, window),
        COST: _sum(defs.COST.name, arms, window),
        UNPRICED: _sum(defs.COST_UNKNOWN.name, arms, window),
        MEASURED: _sum(f"{defs.CONFIDENCE.name}_count", arms, window),
        LOW_CONFIDENCE: _sum(defs.LOW_CONFIDENCE.name, arms, window),
        FEEDBACK: _sum(defs.FEEDBACK.name, arms, window),
        NEGATIVE_FEEDBACK: _sum(
            defs.FEEDBACK.name, _selector(experiment, variant, NEGATIVE_FEEDBACK_MATCHER), window
        ),
    }


# Fleet state names → expressions (one value each, or nothing).
FLEET_WEIGHT = "weight"
FLEET_ROLLED_BACK = "rolled_back"
FLEET_PROMOTED = "promoted"
FLEET_ROLLBACKS = "rollbacks"


def fleet_queries(experiment: str, lookback: str) -> dict[str, str]:
    """What the fleet did: the most advanced weight a sidecar holds, whether one is rolled back
    or promoted now (each pod's last reported state within `lookback`, so a pod that just
    stopped still counts), and how many rollbacks the live pods have counted."""
    name = f'experiment="{experiment}"'
    state = defs.ROLLOUT_STATE.name
    return {
        FLEET_WEIGHT: f"max(last_over_time({defs.ROLLOUT_WEIGHT.name}{{{name}}}[{lookback}]))",
        FLEET_ROLLED_BACK: (
            f'max(last_over_time({state}{{{name}, state="rolled_back"}}[{lookback}]))'
        ),
        FLEET_PROMOTED: f'max(last_over_time({state}{{{name}, state="promoted"}}[{lookback}]))',
        FLEET_ROLLBACKS: (
            f'sum({defs.ROLLOUT_TRANSITIONS.name}{{{name}, to_state="rolled_back"}})'
        ),
    }
