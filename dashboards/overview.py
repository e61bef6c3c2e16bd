"""LLM calls — overview: which model or provider is slow, failing, expensive or unsure."""

from __future__ import annotations

from alerts import series
from dashboards import thresholds
from dashboards.layout import Cell, DashboardSpec, Row
from dashboards.objectives import attribution_row, quota_row, slo_row
from dashboards.panels import (
    NEUTRAL,
    ORANGE,
    Levels,
    Query,
    high_is_bad,
    stat_panel,
    timeseries,
    top_list,
)
from dashboards.promql import (
    CALL_MATCHERS,
    MODEL,
    PROVIDER_ERRORS,
    PROVIDER_MATCHER,
    RANGE_WINDOW,
    SIDECAR_MATCHERS,
    Scope,
    per,
    per_group,
    per_hour,
    ratio,
)
from dashboards.realtime import realtime_row
from dashboards.variables import call_variables

UID = "model-sidecar-overview"

CALLS = Scope(CALL_MATCHERS)
# The in-flight gauge carries only what is known when a call starts: no model label.
IN_FLIGHT = Scope((*SIDECAR_MATCHERS, PROVIDER_MATCHER))

REQUESTS = series.REQUESTS
DURATION = series.DURATION
FIRST_CHUNK = series.FIRST_CHUNK
COST = series.COST
MODEL_LEGEND = "{{gen_ai_request_model}} ({{gen_ai_provider_name}})"

SPEND_ALERTS = ("ModelSpendBurnHigh", "ModelDailyBudgetAtRisk")


def _error_ratio(by: tuple[str, ...]) -> str:
    return ratio(CALLS.sum_rate(REQUESTS, PROVIDER_ERRORS, by=by), CALLS.sum_rate(REQUESTS, by=by))


def _at_a_glance() -> Row:
    return Row(
        "At a glance",
        [
            Cell(
                stat_panel(
                    "Calls per second",
                    "Calls through the selected sidecars, all outcomes.",
                    "reqps",
                    Query(CALLS.sum_rate(REQUESTS)),
                    levels=NEUTRAL,
                ),
                4,
                4,
            ),
            Cell(
                stat_panel(
                    "Error ratio",
                    "Share of calls that failed on the provider's side or on the way: every "
                    "outcome but ok and client_cancelled, not counting 4xx answers other than "
                    "429 (the app's own mistakes). The ratio ModelErrorBudgetBurn watches.",
                    "percentunit",
                    Query(_error_ratio(())),
                    levels=thresholds.ERRORS,
                    runbooks=("ModelErrorBudgetBurn",),
                ),
                4,
                4,
            ),
            Cell(
                stat_panel(
                    "p95 latency",
                    "95th percentile of the call duration as the app saw it, all models.",
                    "s",
                    Query(CALLS.quantile(0.95, DURATION)),
                    levels=thresholds.LATENCY,
                    runbooks=("ModelTailLatencyHigh",),
                ),
                4,
                4,
            ),
            Cell(
                stat_panel(
                    "p95 time to first chunk",
                    "95th percentile of the time until the first streamed chunk (streams only).",
                    "s",
                    Query(CALLS.quantile(0.95, FIRST_CHUNK)),
                    levels=thresholds.FIRST_CHUNK,
                    runbooks=("ModelTimeToFirstTokenHigh",),
                ),
                4,
                4,
            ),
            Cell(
                stat_panel(
                    "Spend per hour",
                    "Estimated spend in US dollars at the current rate (genai-prices data plus "
                    "operator overrides; unpriced calls add nothing).",
                    "currencyUSD",
                    Query(per_hour(CALLS.sum_rate(COST))),
                    levels=NEUTRAL,
                    runbooks=SPEND_ALERTS,
                ),
                4,
                4,
            ),
            Cell(
                stat_panel(
                    "Calls in flight",
                    "Calls received and not yet finished, now.",
                    "short",
                    Query(f"sum({IN_FLIGHT.selector(series.IN_FLIGHT)})"),
                    levels=NEUTRAL,
                ),
                4,
                4,
            ),
        ],
    )


def _traffic_and_errors() -> Row:
    return Row(
        "Traffic and errors",
        [
            Cell(
                timeseries(
                    "Calls per second by model",
                    "Call rate per requested model and provider.",
                    "reqps",
                    [Query(CALLS.sum_rate(REQUESTS, by=MODEL), MODEL_LEGEND)],
                    levels=NEUTRAL,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Error ratio by model",
                    "Share of each model's calls that failed on the provider's side or on the "
                    "way (as in Error ratio); 0 when a model had traffic and no errors. Dashed "
                    "lines: the error budget of the availability target, and ten times it.",
                    "percentunit",
                    [Query(_error_ratio(MODEL), MODEL_LEGEND)],
                    levels=thresholds.ERRORS,
                    runbooks=("ModelErrorBudgetBurn",),
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Calls per second by outcome",
                    "ok, upstream_error (status >= 400), timeout, connection_error, "
                    "client_cancelled, stream_interrupted.",
                    "reqps",
                    [Query(CALLS.sum_rate(REQUESTS, by=("outcome",)), "{{outcome}}")],
                    levels=NEUTRAL,
                    stacked=True,
                ),
                12,
            ),
            Cell(
                top_list(
                    "Top error types",
                    "The ten most frequent error types (upstream status, timeout, "
                    "connection_error, client_cancelled, stream_interrupted) per model over "
                    "the dashboard's time range.",
                    "short",
                    Query(
                        "topk(10, "
                        + CALLS.sum_rate(
                            DURATION,
                            'error_type!=""',
                            by=("error_type", "gen_ai_request_model"),
                            window=RANGE_WINDOW,
                            suffix="_count",
                        )
                        + ")",
                        "{{error_type}} · {{gen_ai_request_model}}",
                    ),
                    levels=Levels(ORANGE),
                    runbooks=("ModelErrorBudgetBurn",),
                ),
                12,
            ),
        ],
    )


def _latency() -> Row:
    latency = [
        Query(CALLS.quantile(q, DURATION, by=MODEL), f"p{round(q * 100)} {MODEL_LEGEND}")
        for q in (0.5, 0.95, 0.99)
    ]
    return Row(
        "Latency",
        [
            Cell(
                timeseries(
                    "Latency p50 / p95 / p99 by model",
                    "Call duration from the request's arrival to the last byte forwarded to "
                    "the app, from the histogram buckets summed per model. Exemplars (dots) "
                    "open the trace of a call in that bucket.",
                    "s",
                    latency,
                    levels=thresholds.LATENCY,
                    runbooks=("ModelTailLatencyHigh",),
                    exemplars=True,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "p95 time to first chunk by model",
                    "How long streaming calls waited for their first chunk (what users feel "
                    "as responsiveness). Streaming calls only.",
                    "s",
                    [Query(CALLS.quantile(0.95, FIRST_CHUNK, by=MODEL), MODEL_LEGEND)],
                    levels=thresholds.FIRST_CHUNK,
                    runbooks=("ModelTimeToFirstTokenHigh",),
                    exemplars=True,
                ),
                12,
            ),
        ],
    )


def _tokens_and_cost() -> Row:
    return Row(
        "Tokens and cost",
        [
            Cell(
                timeseries(
                    "Tokens per second by type",
                    "Provider-reported tokens: input (includes cache_read and "
                    "cache_creation), output (includes reasoning).",
                    "suffix: tok/s",
                    [
                        Query(
                            CALLS.sum_rate(series.TOKENS, by=("gen_ai_token_type",)),
                            "{{gen_ai_token_type}}",
                        )
                    ],
                    levels=NEUTRAL,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Spend per hour by model",
                    "Estimated US dollars per hour at each model's current rate.",
                    "currencyUSD",
                    [Query(per_hour(CALLS.sum_rate(COST, by=MODEL)), MODEL_LEGEND)],
                    levels=thresholds.SPEND_PER_HOUR,
                    runbooks=SPEND_ALERTS,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Cost per 10k calls by model",
                    "Estimated US dollars per 10,000 calls: what a model costs per unit of "
                    "work. Hidden while a model has no calls.",
                    "currencyUSD",
                    [
                        Query(
                            per(
                                CALLS.sum_rate(COST, by=MODEL),
                                CALLS.sum_rate(REQUESTS, by=MODEL),
                                10000,
                            ),
                            MODEL_LEGEND,
                        )
                    ],
                    levels=NEUTRAL,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Unpriced calls by model",
                    "Share of calls that reported tokens but had no known price (add an "
                    "override in the config): their cost is missing from the spend panels.",
                    "percentunit",
                    [
                        Query(
                            ratio(
                                CALLS.sum_rate(series.COST_UNKNOWN, by=MODEL),
                                CALLS.sum_rate(REQUESTS, by=MODEL),
                            ),
                            MODEL_LEGEND,
                        )
                    ],
                    levels=high_is_bad(0.001, 0.05),
                ),
                12,
            ),
        ],
    )


def _retries_and_confidence() -> Row:
    return Row(
        "Retries, confidence and concurrency",
        [
            Cell(
                timeseries(
                    "Retries per call by source",
                    "source=client: share of calls the app's SDK sent as a retry; "
                    "source=sidecar: the sidecar's own extra attempts per call.",
                    "percentunit",
                    [
                        Query(
                            per_group(
                                CALLS.sum_rate(series.RETRIES, by=(*MODEL, "source")),
                                CALLS.sum_rate(REQUESTS, by=MODEL),
                                MODEL,
                            ),
                            "{{source}} · " + MODEL_LEGEND,
                        )
                    ],
                    levels=thresholds.RETRIES,
                    runbooks=("ModelRetryStorm",),
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Low-confidence ratio by model",
                    "Share of the calls whose confidence was measured (token log-"
                    "probabilities) that fell below the configured threshold.",
                    "percentunit",
                    [
                        Query(
                            ratio(
                                CALLS.sum_rate(series.LOW_CONFIDENCE, by=MODEL),
                                CALLS.sum_rate(series.CONFIDENCE, by=MODEL, suffix="_count"),
                            ),
                            MODEL_LEGEND,
                        )
                    ],
                    levels=thresholds.LOW_CONFIDENCE,
                    runbooks=("ModelLowConfidenceHigh",),
                    max_value=1,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Calls in flight by provider",
                    "Calls received and not yet finished, per provider and operation.",
                    "short",
                    [
                        Query(
                            "sum by (gen_ai_provider_name, gen_ai_operation_name) "
                            f"({IN_FLIGHT.selector(series.IN_FLIGHT)})",
                            "{{gen_ai_provider_name}} {{gen_ai_operation_name}}",
                        )
                    ],
                    levels=NEUTRAL,
                ),
                24,
            ),
        ],
    )


def spec() -> DashboardSpec:
    """The overview dashboard."""
    return DashboardSpec(
        uid=UID,
        title="LLM calls — overview",
        description="Rate, errors, latency, tokens, cost, retries and confidence of the LLM "
        "calls passing through model-sidecar.",
        variables=call_variables(),
        rows=[
            _at_a_glance(),
            _traffic_and_errors(),
            _latency(),
            _tokens_and_cost(),
            _retries_and_confidence(),
            realtime_row(),
            # Quota headroom, SLOs and cost by team (issue #21).
            quota_row(),
            slo_row(),
            attribution_row(),
        ],
    )
