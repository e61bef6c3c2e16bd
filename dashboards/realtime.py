"""The Realtime row of the overview: WebSocket sessions (voice and live agents) open now, how
long they last, what one costs, how soon each response answers in audio and in text, and the
upstream's `error` events. Each response is also a call in every other row (operation `chat`)."""

from __future__ import annotations

from alerts import series
from dashboards import thresholds
from dashboards.layout import Cell, Row
from dashboards.panels import NEUTRAL, ORANGE, Levels, Query, stat_panel, timeseries
from dashboards.promql import CALL_MATCHERS, MODEL, RANGE_WINDOW, Scope, per

SESSIONS = Scope(CALL_MATCHERS)
MODEL_LEGEND = "{{gen_ai_request_model}} ({{gen_ai_provider_name}})"


def realtime_row() -> Row:
    """Sessions, their duration and cost, time to first audio and text, errors."""
    first_output = [
        Query(
            SESSIONS.quantile(q, series.REALTIME_FIRST_OUTPUT, by=("modality",)),
            f"p{round(q * 100)} first {{{{modality}}}}",
        )
        for q in (0.5, 0.95)
    ]
    duration = [
        Query(
            SESSIONS.quantile(q, series.REALTIME_SESSION_DURATION, by=MODEL),
            f"p{round(q * 100)} {MODEL_LEGEND}",
        )
        for q in (0.5, 0.95)
    ]
    cost = SESSIONS.sum_rate(series.REALTIME_SESSION_COST, window=RANGE_WINDOW)
    ended = SESSIONS.sum_rate(
        series.REALTIME_SESSION_DURATION, window=RANGE_WINDOW, suffix="_count"
    )
    return Row(
        "Realtime sessions (voice and live agents)",
        [
            Cell(
                timeseries(
                    "Open realtime sessions",
                    "WebSocket sessions (OpenAI and Azure OpenAI Realtime API) upgraded by the "
                    "upstream and not yet closed, by model.",
                    "short",
                    [
                        Query(
                            f"sum by (gen_ai_provider_name, gen_ai_request_model) "
                            f"({SESSIONS.selector(series.REALTIME_SESSIONS)})",
                            MODEL_LEGEND,
                        )
                    ],
                    levels=NEUTRAL,
                ),
                6,
            ),
            Cell(
                timeseries(
                    "Time to first audio / text",
                    "Per response: from response.create (or the end of the user's speech, "
                    "with the server's turn detection) to its first audio delta and its first "
                    "text delta, p50 and p95. What a caller hears as the agent's reaction time.",
                    "s",
                    first_output,
                    levels=thresholds.REALTIME_FIRST_OUTPUT,
                    exemplars=True,
                ),
                6,
            ),
            Cell(
                timeseries(
                    "Session duration p50 / p95",
                    "From the upgrade request to the close of both connections, by model.",
                    "s",
                    duration,
                    levels=NEUTRAL,
                ),
                4,
            ),
            Cell(
                stat_panel(
                    "Cost per session",
                    "Estimated cost of the sessions that ended in the time range (text and "
                    "audio tokens each at their price), divided by their number.",
                    "currencyUSD",
                    Query(per(cost, ended)),
                    levels=NEUTRAL,
                ),
                4,
            ),
            Cell(
                timeseries(
                    "Realtime error events",
                    "`error` events the upstream sent inside sessions, per second, by error "
                    "type (a response that failed is a failed call in the error panels above).",
                    "short",
                    [
                        Query(
                            SESSIONS.sum_rate(series.REALTIME_ERRORS, by=("error_type",)),
                            "{{error_type}}",
                        )
                    ],
                    levels=Levels(ORANGE),
                ),
                4,
            ),
        ],
    )
