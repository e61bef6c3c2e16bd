"""Each stop-loss limit of an experiment next to the value it is judged on now: the same
windows (`StopLoss.window`), summaries (`ArmStats`) and comparisons as `StopLoss.judge`, one
row per candidate and configured limit, so the page can show how close a candidate is to a
rollback."""

from __future__ import annotations

from typing import Any

from sidecar.config.experiments import CONTROL, StopLossConfig
from sidecar.experiments.assignment import Experiment
from sidecar.experiments.stoploss import COST, ERRORS, LATENCY, LOW_CONFIDENCE, ArmStats

# A gate's state, in words (the page shows them as they are, not only as colours).
HOLDS = "holds"
CROSSED = "crossed"
NOT_JUDGED = "not judged"
ROLLED_BACK = "rolled back"
# How a gate's value compares with its limit.
RATIO = "ratio"
DIFFERENCE = "difference"


def stop_loss_gates(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per candidate and configured limit: value now, limit, unit, state, evidence."""
    stop_loss = experiment.stop_loss
    if stop_loss is None:
        return []
    config = stop_loss.config
    control = ArmStats.of(stop_loss.window(CONTROL))
    rows: list[dict[str, Any]] = []
    for variant in experiment.arms:
        if variant == CONTROL:
            continue
        candidate = ArmStats.of(stop_loss.window(variant))
        enough = min(candidate.calls, control.calls) >= config.min_calls
        for name, value, limit, unit, judged, crossed in _gates(candidate, control, config):
            if variant in experiment.rolled_back:
                state = ROLLED_BACK
            elif not (enough and judged) or value is None:
                state = NOT_JUDGED
            else:
                state = CROSSED if crossed else HOLDS
            rows.append(
                {
                    "variant": variant,
                    "gate": name,
                    "value": value,
                    "limit": limit,
                    "unit": unit,
                    "state": state,
                    "calls": candidate.calls,
                    "control_calls": control.calls,
                    "min_calls": config.min_calls,
                }
            )
    return rows


def _gates(
    candidate: ArmStats, control: ArmStats, config: StopLossConfig
) -> list[tuple[str, float | None, float, str, bool, bool]]:
    """(gate, value now, limit, unit, judged at all, crossed) for each configured limit, in
    the order and with the conditions of StopLoss.judge."""
    gates: list[tuple[str, float | None, float, str, bool, bool]] = []
    minimum = config.min_calls
    if config.max_p95_ratio is not None:
        ratio = candidate.p95 / control.p95 if control.p95 > 0 else None
        crossed = (
            ratio is not None
            and ratio > config.max_p95_ratio
            and candidate.p95 - control.p95 >= config.min_p95_increase_seconds
        )
        gates.append((LATENCY, ratio, config.max_p95_ratio, RATIO, True, crossed))
    if config.max_error_ratio_increase is not None:
        difference = candidate.error_ratio - control.error_ratio
        crossed = difference > config.max_error_ratio_increase
        gates.append(
            (ERRORS, difference, config.max_error_ratio_increase, DIFFERENCE, True, crossed)
        )
    if config.max_cost_ratio is not None:
        priced = min(candidate.priced, control.priced) >= minimum
        cost = (
            candidate.cost_per_call / control.cost_per_call if control.cost_per_call > 0 else None
        )
        crossed = cost is not None and cost > config.max_cost_ratio
        gates.append((COST, cost, config.max_cost_ratio, RATIO, priced, crossed))
    if config.max_low_confidence_increase is not None:
        measured = min(candidate.measured, control.measured) >= minimum
        low = candidate.low_confidence_ratio - control.low_confidence_ratio
        crossed = low > config.max_low_confidence_increase
        gates.append(
            (LOW_CONFIDENCE, low, config.max_low_confidence_increase, DIFFERENCE, measured, crossed)
        )
    return gates
