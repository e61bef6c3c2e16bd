"""SLO rules: per SLO, the error ratio over every window its alerts read, the error budget
left over the SLO window, and the SRE workbook's multi-window multi-burn-rate alerts: page at
14.4x the budget rate over 1 h and 5 m (2 % of a 30-day budget in an hour), ticket at 6x over
6 h and 30 m (5 % in six hours).

Latency SLOs count calls per histogram bucket: a call is good when it lands in the bucket
whose upper bound is the threshold, so the threshold must be a bucket boundary. One between
two boundaries is refused at generation time with the nearest two named (`ThresholdError`);
it is never interpolated, because the count under an in-between value is not known.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sidecar.config.objectives import SloConfig
from sidecar.objectives.rulefile import Alert, Group, Record, number
from sidecar.telemetry import conventions as c

# Calls that failed on the provider's side: every outcome but ok and client_cancelled, minus
# 4xx answers other than 429 (the app's own mistakes). The same matchers as
# alerts/recording.py ERROR_MATCHERS (tests/objectives keep them equal).
ERROR_MATCHERS = (
    'outcome!~"ok|client_cancelled", http_status_code!~"4([01][0-9]|2[0-8]|[3-9][0-9])"'
)
# (severity, burn label, factor, long window, short window, for)
BURN_ALERTS = (
    ("page", "fast", Decimal("14.4"), "1h", "5m", "2m"),
    ("ticket", "slow", Decimal("6"), "6h", "30m", "15m"),
)
BURN_WINDOWS = ("5m", "30m", "1h", "6h")
RUNBOOK_PAGE = "slos.md"
ERROR_RATIO = "slo:sli_error:ratio_rate{window}"
BUDGET_REMAINING = "slo:error_budget_remaining:ratio"
OBJECTIVE = "slo:objective:ratio"


class ThresholdError(ValueError):
    """A latency threshold that is not a bucket boundary (the message names the nearest)."""


def _histogram(slo: SloConfig) -> tuple[c.Alternatives, tuple[float, ...], str]:
    if slo.measure == "ttft":
        return c.CALL_TIME_TO_FIRST_CHUNK, c.TIME_TO_FIRST_CHUNK.buckets, "time to first chunk"
    return c.CALL_DURATION, c.OPERATION_DURATION.buckets, "call duration"


def check_threshold(slo: SloConfig, index: int) -> str:
    """The `le` label value of the SLO's threshold; raises ThresholdError when it is not a
    bucket boundary of its histogram."""
    _, buckets, what = _histogram(slo)
    threshold = slo.threshold_seconds
    assert threshold is not None
    for bound in buckets:
        if abs(bound - threshold) <= 1e-9 * max(1.0, bound):
            # As prometheus_client writes `le` for these bounds: repr (`1.28`, `600.0`).
            return repr(float(bound))
    below = [b for b in buckets if b < threshold]
    above = [b for b in buckets if b > threshold]
    nearest = " and ".join(f"{b:g} s" for b in (below[-1:] + above[:1]))
    raise ThresholdError(
        f"slos[{index}] {slo.name!r}: threshold_seconds {threshold:g} is not a bucket boundary "
        f"of the {what} histogram; the nearest are {nearest} (choose one of them)"
    )


def _selector(slo: SloConfig, *extra: str) -> str:
    matchers = list(extra)
    if slo.model is not None:
        matchers.append(f"gen_ai_request_model={_quote(slo.model)}")
    if slo.upstream is not None:
        matchers.append(f"upstream={_quote(slo.upstream)}")
    return "{" + ", ".join(matchers) + "}" if matchers else ""


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rate_sum(names: Sequence[str], selector: str, window: str) -> str:
    # `or` per series keeps one generation's copy in `dup` mode and reads mixed fleets whole.
    rates = " or ".join(f"rate({name}{selector}[{window}])" for name in names)
    return f"sum({rates})"


def error_ratio_expr(slo: SloConfig, window: str, le: str | None) -> str:
    """PromQL: the share of the SLO's calls over `window` that were bad."""
    if slo.kind == "success":
        total = _rate_sum((c.REQUESTS.name,), _selector(slo), window)
        bad = _rate_sum((c.REQUESTS.name,), _selector(slo, ERROR_MATCHERS), window)
        return f"(\n  {bad}\nor\n  {total} * 0\n)\n/\n({total} > 0)"
    histogram, _, _ = _histogram(slo)
    # Failed calls are the success SLO's business: a duration SLO reads calls that succeeded.
    only_ok = ('error_type=""',) if slo.measure == "duration" else ()
    total = _rate_sum(
        [f"{name}_count" for name in histogram.names], _selector(slo, *only_ok), window
    )
    good = _rate_sum(
        [f"{name}_bucket" for name in histogram.names],
        _selector(slo, *only_ok, f'le="{le}"'),
        window,
    )
    return f"1 - (\n  {good}\n/\n  ({total} > 0)\n)"


def slo_group(slo: SloConfig, index: int) -> Group:
    """The recording rules and burn-rate alerts of one SLO."""
    le = check_threshold(slo, index) if slo.kind == "latency" else None
    labels = {"slo": slo.name}
    budget = Decimal(1) - Decimal(str(slo.objective))
    rules: list[Record | Alert] = [
        Record(ERROR_RATIO.format(window=w), error_ratio_expr(slo, w, le), labels)
        for w in dict.fromkeys((*BURN_WINDOWS, slo.window))
    ]
    selector = f'{{slo="{slo.name}"}}'
    rules.append(Record(OBJECTIVE, f"vector({number(slo.objective)})", labels))
    rules.append(
        Record(
            BUDGET_REMAINING,
            f"1 - {ERROR_RATIO.format(window=slo.window)}{selector} / {number(float(budget))}",
            labels,
        )
    )
    what = describe(slo)
    for severity, burn, factor, long, short, for_ in BURN_ALERTS:
        limit = number(float(factor * budget))
        rules.append(
            Alert(
                alert="SLOErrorBudgetBurn",
                expr=(
                    f"{ERROR_RATIO.format(window=long)}{selector} > {limit}\nand\n"
                    f"{ERROR_RATIO.format(window=short)}{selector} > {limit}"
                ),
                for_=for_,
                labels={"severity": severity, "slo": slo.name, "burn": burn},
                summary=f"SLO {slo.name} is burning its error budget {factor}x too fast",
                description=(
                    f"SLO {slo.name}: {what}. Over the last {long} "
                    f"{{{{ $value | humanizePercentage }}}} of them were bad ({short} too): "
                    f"{factor}x the rate that spends the whole error budget "
                    f"({number(float(budget) * 100)} %) in {slo.window}."
                ),
                runbook_page=RUNBOOK_PAGE,
            )
        )
    return Group(f"model-sidecar.slo.{slo.name}", tuple(rules))


def describe(slo: SloConfig) -> str:
    """What the SLO promises, in words: `99 % of streamed calls of gpt-4o get a first chunk
    within 1.28 s over 28d`."""
    scope = "streamed calls" if slo.kind == "latency" and slo.measure == "ttft" else "calls"
    if slo.model is not None:
        scope += f" of {slo.model}"
    if slo.upstream is not None:
        scope += f" to {slo.upstream}"
    if slo.kind == "success":
        goal = "succeed"
    elif slo.measure == "ttft":
        goal = f"get a first chunk within {slo.threshold_seconds:g} s"
    else:
        goal = f"finish within {slo.threshold_seconds:g} s"
    return f"{number(slo.objective * 100)} % of {scope} {goal} over {slo.window}"


def slo_groups(slos: Sequence[SloConfig]) -> tuple[Group, ...]:
    """A group per SLO; raises ThresholdError for the first threshold off the buckets."""
    return tuple(slo_group(slo, index) for index, slo in enumerate(slos))
