"""Model comparison: the decision matrix (latency, TTFT, cost, errors, retries, confidence,
repeatability, tokens) per model and experiment variant, on live traffic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alerts import series
from dashboards import thresholds
from dashboards.experiments import experiment_rows
from dashboards.layout import Cell, DashboardSpec, Row
from dashboards.panels import (
    NEUTRAL,
    Column,
    Levels,
    Query,
    comparison_table,
    timeseries,
)
from dashboards.promql import (
    CALL_MATCHERS,
    PROVIDER_ERRORS,
    RANGE_WINDOW,
    RATE_WINDOW,
    Scope,
    per,
    ratio,
)
from dashboards.rollouts import rollout_annotations, rollout_row
from dashboards.variables import call_variables, experiment_variable

UID = "model-sidecar-comparison"

SCOPE = Scope((*CALL_MATCHERS, 'experiment=~"$experiment"'))
ARM = ("gen_ai_provider_name", "gen_ai_request_model", "experiment", "variant")
ARM_HEADERS = {
    "gen_ai_provider_name": "Provider",
    "gen_ai_request_model": "Model",
    "experiment": "Experiment",
    "variant": "Variant",
}
ARM_LEGEND = "{{gen_ai_request_model}} {{variant}}"

REQUESTS = series.REQUESTS
DURATION = series.DURATION
FIRST_CHUNK = series.FIRST_CHUNK
REPEATS = series.REPEAT_OUTPUTS


@dataclass(frozen=True, slots=True)
class Measure:
    """One comparison measure: a query per window, shown as a table column and a graph."""

    header: str
    title: str
    description: str
    unit: str
    expr: Callable[[str], str]
    levels: Levels = NEUTRAL
    runbooks: tuple[str, ...] = ()
    # A count over the time range in the table may be a rate in the graph.
    graph_unit: str | None = None
    graph_width: int = 8
    # Latency graphs show exemplars: a dot opens the trace of a call in that bucket.
    exemplars: bool = False

    def column(self) -> Column:
        """The table column over the dashboard's time range."""
        return Column(self.header, self.expr(RANGE_WINDOW), self.unit, self.levels)

    def panel(self) -> Cell:
        """The time series of the same measure, side by side per model and variant."""
        return Cell(
            timeseries(
                self.title,
                self.description,
                self.graph_unit or self.unit,
                [Query(self.expr(RATE_WINDOW), ARM_LEGEND)],
                levels=self.levels,
                runbooks=self.runbooks,
                exemplars=self.exemplars,
            ),
            self.graph_width,
        )


def _calls(window: str) -> str:
    return SCOPE.sum_rate(REQUESTS, by=ARM, window=window)


def _share(counter: str, *matchers: str, of: Callable[[str], str] = _calls) -> Callable[[str], str]:
    """Share of `of` counted by `counter{matchers}`: 0 with traffic and no hits, never ÷ 0."""
    return lambda window: ratio(
        SCOPE.sum_rate(counter, *matchers, by=ARM, window=window), of(window)
    )


def _per_call(counter: str, *matchers: str, scale: float = 1) -> Callable[[str], str]:
    return lambda window: per(
        SCOPE.sum_rate(counter, *matchers, by=ARM, window=window), _calls(window), scale
    )


def _quantile(q: float, histogram: series.Series) -> Callable[[str], str]:
    return lambda window: SCOPE.quantile(q, histogram, by=ARM, window=window)


def _repeats(window: str) -> str:
    return SCOPE.sum_rate(REPEATS, by=ARM, window=window)


def _feedback(window: str) -> str:
    return SCOPE.sum_rate(series.FEEDBACK, by=ARM, window=window)


def _confidence_measured(window: str) -> str:
    return SCOPE.sum_rate(series.CONFIDENCE, by=ARM, window=window, suffix="_count")


MEASURES = (
    Measure(
        "Calls", "Calls per second",
        "Calls per model and experiment variant (the table: calls in the time range).", "short",
        _calls, graph_unit="reqps", graph_width=24,
    ),
    Measure(
        "p50 latency", "p50 latency", "Median call duration as the app saw it.", "s",
        _quantile(0.5, DURATION), thresholds.LATENCY, exemplars=True,
    ),
    Measure(
        "p95 latency", "p95 latency", "95th percentile of the call duration.", "s",
        _quantile(0.95, DURATION), thresholds.LATENCY, ("ModelTailLatencyHigh",), exemplars=True,
    ),
    Measure(
        "p95 TTFT", "p95 time to first chunk",
        "95th percentile of the time to the first streamed chunk (streaming calls only).", "s",
        _quantile(0.95, FIRST_CHUNK), thresholds.FIRST_CHUNK, ("ModelTimeToFirstTokenHigh",),
        exemplars=True,
    ),
    Measure(
        "Cost / 10k calls", "Cost per 10k calls",
        "Estimated US dollars per 10,000 calls (unpriced calls count as calls, add no cost).",
        "currencyUSD", _per_call(series.COST, scale=10000),
    ),
    Measure(
        "Error %", "Error ratio",
        "Share of calls that failed on the provider's side or on the way (every outcome but ok "
        "and client_cancelled, not counting 4xx answers other than 429).", "percentunit",
        _share(REQUESTS, PROVIDER_ERRORS), thresholds.ERRORS, ("ModelErrorBudgetBurn",),
    ),
    Measure(
        "Retry %", "Retries per call",
        "Client retries (the app's SDK) plus the sidecar's own extra attempts, per call.",
        "percentunit", _share(series.RETRIES), thresholds.RETRIES,
        ("ModelRetryStorm",),
    ),
    Measure(
        "Low confidence %", "Low-confidence ratio",
        "Share of the calls with a measured confidence that fell below the threshold.",
        "percentunit", _share(series.LOW_CONFIDENCE, of=_confidence_measured),
        thresholds.LOW_CONFIDENCE, ("ModelLowConfidenceHigh",),
    ),
    Measure(
        "Repeatable %", "Repeatability (same / all repeats)",
        "Of the repeated temperature-0 (or fixed-seed) requests, the share whose output matched "
        "the earlier one.",
        "percentunit", _share(REPEATS, 'result="same"', of=_repeats), thresholds.REPEATABLE,
        ("ModelOutputNotRepeatable",),
    ),
    Measure(
        "Hallucinations / 1k", "Hallucinations per 1k calls (feedback)",
        "Calls the app reported as hallucinations (POST /_sidecar/feedback) per 1,000 calls.",
        "short", _per_call(series.FEEDBACK, 'outcome="hallucination"', scale=1000),
    ),
    Measure(
        "Accepted %", "Accepted answers (feedback)",
        "Share of the feedback the app posted that was `accepted`.", "percentunit",
        _share(series.FEEDBACK, 'outcome="accepted"', of=_feedback),
    ),
    Measure(
        "Tokens / call", "Tokens per call",
        "Input plus output tokens per call, as reported by the provider.", "short",
        _per_call(series.TOKENS, 'gen_ai_token_type=~"input|output"'),
    ),
)  # fmt: skip


def _decision_matrix() -> Row:
    matrix = comparison_table(
        "Decision matrix",
        "One row per model and experiment arm over the dashboard's time range: calls, "
        "latency, time to first chunk, cost, errors, retries, confidence, repeatability and "
        "tokens. Empty cells: not measured for that model (e.g. no streams, no logprobs, no "
        "repeats).",
        [measure.column() for measure in MEASURES],
        ARM_HEADERS,
        levels=NEUTRAL,
        runbooks=("CandidateModelWorse", "ModelSidecarStopLossTripped"),
    )
    return Row("Models side by side", [Cell(matrix, 24, 10)])


def spec() -> DashboardSpec:
    """The model comparison dashboard."""
    return DashboardSpec(
        uid=UID,
        title="Model comparison",
        description="Models and experiment variants side by side on live traffic: latency, "
        "time to first chunk, cost, errors, retries, confidence, repeatability and tokens.",
        variables=[*call_variables(), experiment_variable()],
        rows=[
            _decision_matrix(),
            Row("Over time", [measure.panel() for measure in MEASURES]),
            *experiment_rows(),
            rollout_row(),
        ],
        annotations=rollout_annotations(),
    )
