"""Staged rollouts and silent model changes: RolloutRolledBack, RolloutStuck,
ModelChangedSilently. They read the rollout gauges and the model change counter the sidecars
export (sidecar/telemetry/conventions.py); the gates themselves are judged by the sidecars,
with the same PromQL (sidecar/experiments/promql.py)."""

from __future__ import annotations

from collections.abc import Mapping

from alerts import recording as rec
from alerts import series as s
from alerts.model import AlertRule

# RolloutStuck: a step lasting this many times the rollout's minimum step duration.
ROLLOUT_STUCK_FACTOR = 3
# ModelChangedSilently fires for this long after a change.
MODEL_CHANGE_WINDOW = "1h"


def rollout_alerts(t: Mapping[str, str], timing: rec.Timing) -> tuple[AlertRule, ...]:
    """RolloutRolledBack, RolloutStuck, ModelChangedSilently."""
    stepping = f'{s.ROLLOUT_STATE}{{state=~"step_.*"}} == 1'
    return (
        AlertRule(
            alert="RolloutRolledBack",
            expr=f'sum by (experiment) ({s.ROLLOUT_STATE}{{state="rolled_back"}}) > 0',
            for_=timing.for_("0s"),
            severity="warning",
            summary="Rollout {{ $labels.experiment }} was rolled back",
            description=(
                "The staged rollout of experiment {{ $labels.experiment }} rolled its candidate "
                "back to 0 % (sidecars in state rolled_back: {{ $value }}). A gate failed or an "
                "admin aborted it; the sidecars' /status names the gate and its numbers."
            ),
        ),
        AlertRule(
            alert="RolloutStuck",
            expr=(
                "max by (experiment) (\n"
                f"  (time() - {s.ROLLOUT_STEP_STARTED})\n"
                f"  / ({s.ROLLOUT_STEP_MIN_DURATION} > 0)\n"
                f"  and on (experiment, instance, job) ({stepping})\n"
                f") > {ROLLOUT_STUCK_FACTOR}"
            ),
            for_=timing.for_("5m"),
            severity="warning",
            summary="Rollout {{ $labels.experiment }} makes no progress",
            description=(
                "The staged rollout of experiment {{ $labels.experiment }} has held its step for "
                "{{ $value | humanize }}x its minimum step duration (limit "
                f"{ROLLOUT_STUCK_FACTOR}x): a gate waits for evidence that does not come, or "
                "the fleet's verdict cannot be read from Prometheus."
            ),
        ),
        AlertRule(
            alert="ModelChangedSilently",
            expr=(
                f"sum by (gen_ai_request_model) "
                f"(increase({s.MODEL_CHANGES}[{MODEL_CHANGE_WINDOW}])) > 0"
            ),
            for_=timing.for_("0s"),
            severity="warning",
            summary="The provider changed what serves {{ $labels.gen_ai_request_model }}",
            description=(
                "The response model or system_fingerprint returned for "
                "{{ $labels.gen_ai_request_model }} changed ({{ $value | humanize }} changes in "
                f"the last {MODEL_CHANGE_WINDOW}): the provider swapped the snapshot or backend "
                f"behind the name. `{s.MODEL_INFO}` shows what serves it now."
            ),
        ),
    )
