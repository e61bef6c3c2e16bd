"""The staged rollout row of the comparison dashboard (candidate share over time, each gate's
value against its limit, transitions and decision errors, silent model changes) and the
annotations that line rollout transitions and model changes up with every other panel."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from alerts import series
from dashboards.experiments import EXPERIMENT_MATCHER, EXPERIMENT_SCOPE
from dashboards.layout import Cell, Row
from dashboards.panels import DATASOURCE, NEUTRAL, Query, timeseries
from dashboards.promql import CALL_MATCHERS, RATE_WINDOW, SIDECAR_MATCHERS, Scope, by_clause

MODEL_SCOPE = Scope(CALL_MATCHERS)
# An annotation's window: a transition or change shows once, at the first scrape after it.
ANNOTATION_WINDOW = "2m"


def rollout_row() -> Row:
    """Weight, gates against limits, transitions, model changes."""
    weight = Query(
        f"max by (experiment, instance) ({EXPERIMENT_SCOPE.selector(series.ROLLOUT_WEIGHT)})",
        "{{experiment}} {{instance}}",
    )
    value = Query(
        f"max by (experiment, gate) ({EXPERIMENT_SCOPE.selector(series.ROLLOUT_GATE_VALUE)})",
        "{{experiment}} {{gate}}",
    )
    limit = Query(
        f"max by (experiment, gate) ({EXPERIMENT_SCOPE.selector(series.ROLLOUT_GATE_LIMIT)})",
        "{{experiment}} {{gate}} limit",
    )
    transitions = Query(
        f"{by_clause(('experiment', 'to_state', 'reason'))}"
        f"({EXPERIMENT_SCOPE.increase(series.ROLLOUT_TRANSITIONS, window=RATE_WINDOW)})",
        "{{experiment}} -> {{to_state}} ({{reason}})",
    )
    errors = Query(
        f"{by_clause(('experiment',))}"
        f"({EXPERIMENT_SCOPE.increase(series.ROLLOUT_DECISION_ERRORS, window=RATE_WINDOW)})",
        "{{experiment}} decision errors",
    )
    changes = Query(
        f"{by_clause(('gen_ai_request_model',))}"
        f"({MODEL_SCOPE.increase(series.MODEL_CHANGES, window=RATE_WINDOW)})",
        "{{gen_ai_request_model}}",
    )
    return Row(
        "Staged rollouts",
        [
            Cell(
                timeseries(
                    "Rollout: candidate share",
                    "Percent of matching calls each sidecar sends to the rollout's candidate: "
                    "its current step (0 rolled back, 100 promoted). Pods of one fleet "
                    "(decision: prometheus) move together.",
                    "percent", [weight], levels=NEUTRAL, max_value=100,
                    runbooks=("RolloutStuck", "RolloutRolledBack"),
                ),
                6,
            ),
            Cell(
                timeseries(
                    "Rollout gates: value vs limit",
                    "Each gate at its last evaluation: candidate minus control (errors, "
                    "low_confidence, feedback) or candidate / control (latency, ttft, cost), "
                    "and the limit it must stay under. A value over its limit with enough "
                    "evidence rolls the candidate back.",
                    "short", [value, limit], levels=NEUTRAL, min_value=None,
                    runbooks=("RolloutRolledBack",),
                ),
                6,
            ),
            Cell(
                timeseries(
                    "Rollout transitions and decision errors",
                    "State changes per rate interval by target state and reason (a gate, the "
                    "fleet, an admin action), and evaluations that could not read the fleet's "
                    "verdict from Prometheus (the rollout held its step).",
                    "short", [transitions, errors], levels=NEUTRAL,
                    runbooks=("RolloutStuck",),
                ),
                6,
            ),
            Cell(
                timeseries(
                    "Silent model changes",
                    "Changes of the response model or system_fingerprint the provider returns "
                    "for a requested model, per rate interval (also an annotation).",
                    "short", [changes], levels=NEUTRAL,
                    runbooks=("ModelChangedSilently",),
                ),
                6,
            ),
        ],
    )  # fmt: skip


def rollout_annotations() -> list[dashboard.AnnotationQuery]:
    """Rollout transitions and silent model changes, drawn on every time series panel."""
    scope = Scope((*SIDECAR_MATCHERS, EXPERIMENT_MATCHER))
    state = scope.selector(series.ROLLOUT_STATE)
    transitions = (
        f"max by (experiment, state) (changes({state}[{ANNOTATION_WINDOW}]) > 0 and {state} == 1)"
    )
    change = (
        f"sum by (gen_ai_request_model) (changes("
        f"{MODEL_SCOPE.selector(series.MODEL_CHANGES)}[{ANNOTATION_WINDOW}])) > 0"
    )
    return [
        dashboard.AnnotationQuery()
        .name("Rollout transitions")
        .datasource(DATASOURCE)
        .expr(transitions)
        .enable(True)
        .icon_color("blue"),
        dashboard.AnnotationQuery()
        .name("Silent model changes")
        .datasource(DATASOURCE)
        .expr(change)
        .enable(True)
        .icon_color("orange"),
    ]
