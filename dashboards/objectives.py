"""The overview's rows for issue #21: provider quota headroom (from the providers' rate-limit
headers), the configured SLOs (error budget left, burn rate; recorded by the rules of
`model-sidecar slo-rules`) and cost by team (the `attribution` label, with budgets)."""

from __future__ import annotations

from dashboards.layout import Cell, Row
from dashboards.panels import NEUTRAL, ORANGE, Levels, Query, high_is_bad, low_is_bad, timeseries
from dashboards.promql import MODEL_MATCHER, SIDECAR_MATCHERS, Scope, per_hour
from sidecar.objectives.budget_rules import BUDGET, FORECAST
from sidecar.objectives.slo_rules import BUDGET_REMAINING, ERROR_RATIO, OBJECTIVE
from sidecar.telemetry import conventions as c

# Quota gauges carry upstream, model and kind (no provider label).
QUOTA = Scope((*SIDECAR_MATCHERS, MODEL_MATCHER))
QUOTA_BY = "upstream, gen_ai_request_model, kind"
QUOTA_LEGEND = "{{kind}} {{gen_ai_request_model}} ({{upstream}})"
# Counted per upstream only.
UPSTREAMS = Scope(SIDECAR_MATCHERS)
TEAMS = Scope((*SIDECAR_MATCHERS, MODEL_MATCHER))


def quota_row() -> Row:
    """What is left of each provider quota, when it resets, and the time to exhaustion."""
    remaining = f"min by ({QUOTA_BY}) ({QUOTA.selector(c.RATELIMIT_REMAINING.name)})"
    limit = f"max by ({QUOTA_BY}) ({QUOTA.selector(c.RATELIMIT_LIMIT.name)})"
    return Row(
        "Provider quota headroom",
        [
            Cell(
                timeseries(
                    "Quota left",
                    "Remaining share of each provider rate limit (requests, tokens, Anthropic's "
                    "input and output tokens) as the last responses reported it; the lowest "
                    "any pod saw. Azure reports no limit, only the remaining count (next panel).",
                    "percentunit",
                    [Query(f"{remaining}\n/\n({limit} > 0)", QUOTA_LEGEND)],
                    levels=low_is_bad(0.1, 0.25),
                    max_value=1,
                    runbooks=["ProviderQuotaExhaustionSoon"],
                ),
                8,
            ),
            Cell(
                timeseries(
                    "Quota remaining",
                    "The remaining count as reported (requests or tokens).",
                    "short",
                    [Query(remaining, QUOTA_LEGEND)],
                    levels=NEUTRAL,
                ),
                6,
            ),
            Cell(
                timeseries(
                    "Until the window resets",
                    "Seconds until each quota window resets (OpenAI-style durations, "
                    "Anthropic RFC 3339 times).",
                    "s",
                    [
                        Query(
                            f"max by ({QUOTA_BY}) ({QUOTA.selector(c.RATELIMIT_RESET.name)})",
                            QUOTA_LEGEND,
                        )
                    ],
                    levels=NEUTRAL,
                ),
                5,
            ),
            Cell(
                timeseries(
                    "Malformed rate-limit headers",
                    "Rate-limit headers the sidecar could not read (ignored, never an error "
                    "for the call), per second by upstream.",
                    "short",
                    [
                        Query(
                            f"sum by (upstream) ({QUOTA.rate(c.RATELIMIT_HEADER_ERRORS.name)})",
                            "{{upstream}}",
                        )
                    ],
                    levels=Levels(ORANGE),
                ),
                5,
            ),
        ],
    )


def slo_row() -> Row:
    """Per configured SLO: the error budget left over its window and the burn rate."""
    budget_rate = f"(1 - {OBJECTIVE})"
    return Row(
        "Service level objectives (slos: in the config, rules from `model-sidecar slo-rules`)",
        [
            Cell(
                timeseries(
                    "Error budget left",
                    "Share of each SLO's error budget left over its window: 1 is untouched, "
                    "0 spent, below 0 overspent.",
                    "percentunit",
                    [Query(BUDGET_REMAINING, "{{slo}}")],
                    levels=low_is_bad(0, 0.25),
                    min_value=None,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Burn rate (1 h)",
                    "How fast each SLO spends its error budget: bad share of calls over the "
                    "last hour / the share the objective allows. 1 spends it exactly over the "
                    "window; the page fires above 14.4 (and over 5 m), the ticket above 6 "
                    "(over 6 h and 30 m).",
                    "short",
                    [
                        Query(
                            f"{ERROR_RATIO.format(window='1h')}\n/ on (slo)\n({budget_rate} > 0)",
                            "{{slo}}",
                        )
                    ],
                    levels=high_is_bad(6, 14.4),
                ),
                12,
            ),
        ],
    )


def attribution_row() -> Row:
    """Spend, calls and tokens by team (the attribution header), with budget forecasts."""
    by_team = ("attribution",)
    return Row(
        "Cost by team (attribution: in the config)",
        [
            Cell(
                timeseries(
                    "Spend per hour by team",
                    "Estimated cost per hour by the value of the attribution header (`other`: "
                    "not allowed or past the bound; `none`: no header).",
                    "currencyUSD",
                    [
                        Query(
                            per_hour(TEAMS.sum_rate(c.ATTRIBUTION_COST.name, by=by_team)),
                            "{{attribution}}",
                        )
                    ],
                    levels=NEUTRAL,
                    stacked=True,
                ),
                8,
            ),
            Cell(
                timeseries(
                    "Forecast vs budget",
                    "At the spend rate of the last hour: the spend over each budget's period "
                    "(day or 30 days), and the budget itself (budgets: in the config).",
                    "currencyUSD",
                    [
                        Query(FORECAST, "{{attribution}} forecast per {{period}}"),
                        Query(BUDGET, "{{attribution}} budget per {{period}}"),
                    ],
                    levels=NEUTRAL,
                ),
                8,
            ),
            Cell(
                timeseries(
                    "Calls and tokens by team",
                    "Calls per second and tokens per second by team.",
                    "short",
                    [
                        Query(
                            TEAMS.sum_rate(c.ATTRIBUTION_REQUESTS.name, by=by_team),
                            "calls {{attribution}}",
                        ),
                        Query(
                            TEAMS.sum_rate(c.ATTRIBUTION_TOKENS.name, by=by_team),
                            "tokens {{attribution}}",
                        ),
                    ],
                    levels=NEUTRAL,
                ),
                8,
            ),
        ],
    )
