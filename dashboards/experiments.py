"""Experiment rows of the comparison dashboard: stop-loss state and trips, user feedback per
arm (hallucinations and acceptance are decision-matrix measures), and the paired deltas of
shadow calls (latency, time to first chunk, tokens, cost, output agreement)."""

from __future__ import annotations

from alerts import series
from dashboards.layout import Cell, Row
from dashboards.panels import NEUTRAL, Levels, Query, timeseries
from dashboards.promql import (
    CALL_MATCHERS,
    RATE_WINDOW,
    SIDECAR_MATCHERS,
    Scope,
    by_clause,
    per,
    ratio,
)

EXPERIMENT_MATCHER = 'experiment=~"$experiment"'
# Per-experiment series carry no model labels; call series do.
EXPERIMENT_SCOPE = Scope((*SIDECAR_MATCHERS, EXPERIMENT_MATCHER))
CALL_SCOPE = Scope((*CALL_MATCHERS, EXPERIMENT_MATCHER))
ARM = ("gen_ai_provider_name", "gen_ai_request_model", "experiment", "variant")
PAIR = ("experiment", "variant")
ARM_LEGEND = "{{gen_ai_request_model}} {{variant}}"
PAIR_LEGEND = "{{experiment}} {{variant}}"

FEEDBACK = series.FEEDBACK
PAIRS = series.SHADOW_PAIRS
LATENCY_DELTA = series.SHADOW_LATENCY_DELTA
TTFT_DELTA = series.SHADOW_TTFT_DELTA
# Below 90 % identical answers the candidate behaves differently (not necessarily worse).
AGREEMENT = Levels("orange", ((0.9, "green"),))


def _paired_delta(
    counter: str, *matchers: str, pairs: str = LATENCY_DELTA + "_count", scale: float = 1
) -> str:
    """Mean shadow-minus-control of a paired counter, per pair counted by `pairs`."""
    shadow = EXPERIMENT_SCOPE.sum_rate(counter, 'side="shadow"', *matchers, by=PAIR)
    control = EXPERIMENT_SCOPE.sum_rate(counter, 'side="control"', *matchers, by=PAIR)
    return per(f"({shadow} - {control})", EXPERIMENT_SCOPE.sum_rate(pairs, by=PAIR), scale)


def _stop_loss_row() -> Row:
    active = Query(
        f"max by (experiment) ({EXPERIMENT_SCOPE.selector(series.EXPERIMENT_ACTIVE)})",
        "{{experiment}}",
    )
    increase = EXPERIMENT_SCOPE.increase(series.STOPLOSS_TRIPS, window=RATE_WINDOW)
    trips = Query(f"{by_clause(('experiment', 'reason'))}({increase})", "{{experiment}} {{reason}}")
    outcomes = Query(
        CALL_SCOPE.sum_rate(FEEDBACK, by=("experiment", "variant", "outcome")),
        "{{experiment}} {{variant}} {{outcome}}",
    )
    edit = Query(
        per(
            CALL_SCOPE.sum_rate(series.EDIT_SECONDS, by=ARM, suffix="_sum"),
            CALL_SCOPE.sum_rate(series.EDIT_SECONDS, by=ARM, suffix="_count"),
        ),
        ARM_LEGEND,
    )
    return Row(
        "Experiments: stop-loss and feedback",
        [
            Cell(
                timeseries(
                    "Experiment active",
                    "1 while a candidate takes traffic; 0 once the stop-loss rolled every "
                    "candidate back (until a config change or POST /experiments/<name>/resume).",
                    "short", [active], levels=NEUTRAL, max_value=1,
                    runbooks=("ModelSidecarStopLossTripped",),
                ),
                6,
            ),
            Cell(
                timeseries(
                    "Stop-loss trips",
                    "Candidates rolled back per rate interval, by the limit crossed (latency, "
                    "errors, cost, "
                    "low_confidence). The sidecar's /status says which candidate and why.",
                    "short", [trips], levels=NEUTRAL,
                    runbooks=("ModelSidecarStopLossTripped", "CandidateModelWorse"),
                ),
                6,
            ),
            Cell(
                timeseries(
                    "Feedback by outcome",
                    "Feedback the app posted per second, by arm and outcome (accepted, "
                    "edited, rejected, hallucination).",
                    "reqps", [outcomes], levels=NEUTRAL, stacked=True,
                ),
                6,
            ),
            Cell(
                timeseries(
                    "Mean human edit time",
                    "Mean edit_seconds reported with feedback, per model and arm.",
                    "s", [edit], levels=NEUTRAL,
                ),
                6,
            ),
        ],
    )  # fmt: skip


def _shadow_row() -> Row:
    quantiles = [
        Query(
            EXPERIMENT_SCOPE.quantile(q, LATENCY_DELTA, by=PAIR),
            f"{PAIR_LEGEND} p{round(q * 100)}",
        )
        for q in (0.5, 0.95)
    ]
    mean = Query(_paired_delta(series.SHADOW_PAIRED_DURATION), "mean")
    ttft = Query(
        _paired_delta(
            series.SHADOW_PAIRED_TTFT,
            pairs=TTFT_DELTA + "_count",
        ),
        PAIR_LEGEND,
    )
    tokens = Query(
        _paired_delta(series.SHADOW_PAIRED_TOKENS, 'gen_ai_token_type="output"'),
        PAIR_LEGEND,
    )
    cost = Query(
        _paired_delta(
            series.SHADOW_PAIRED_COST,
            pairs=series.SHADOW_COST_DELTA + "_count",
            scale=10000,
        ),
        PAIR_LEGEND,
    )
    agreement = Query(
        ratio(
            EXPERIMENT_SCOPE.sum_rate(PAIRS, 'agreement="same"', by=PAIR),
            EXPERIMENT_SCOPE.sum_rate(PAIRS, 'agreement=~"same|different"', by=PAIR),
        ),
        PAIR_LEGEND,
    )
    return Row(
        "Experiments: shadow pairs (shadow minus control)",
        [
            Cell(
                timeseries(
                    "Shadow latency delta",
                    "Per pair, the shadow call's duration minus its control's: p50 and p95 "
                    "of the pairs, and the exact mean. Above 0: the candidate is slower.",
                    "s", [*quantiles, mean], levels=NEUTRAL, min_value=None,
                ),
                8,
            ),
            Cell(
                timeseries(
                    "Time to first chunk delta (mean)",
                    "Streaming pairs: the shadow's time to first chunk minus the control's.",
                    "s", [ttft], levels=NEUTRAL, min_value=None,
                ),
                8,
            ),
            Cell(
                timeseries(
                    "Output agreement",
                    "Share of pairs whose output (text and tool calls) is identical.",
                    "percentunit", [agreement], levels=AGREEMENT, max_value=1,
                ),
                8,
            ),
            Cell(
                timeseries(
                    "Output tokens delta per pair",
                    "Mean output tokens of the shadow minus the control's.",
                    "short", [tokens], levels=NEUTRAL, min_value=None,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Cost delta per 10k calls",
                    "What 10,000 calls would cost more (or less) on the candidate, from pairs "
                    "where both calls were priced.",
                    "currencyUSD", [cost], levels=NEUTRAL, min_value=None,
                ),
                12,
            ),
        ],
    )  # fmt: skip


def experiment_rows() -> list[Row]:
    """The rows the comparison dashboard adds for experiments."""
    return [_stop_loss_row(), _shadow_row()]
