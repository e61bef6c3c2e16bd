"""Per-model alerts: tail latency, time to first token, error budget, spend, retries,
confidence and repeatability. `t` maps each setting name to the text the rules carry."""

from __future__ import annotations

from collections.abc import Mapping

from alerts import recording as rec
from alerts import series as s
from alerts.model import MODEL_LABELS, AlertRule

MODEL = "{{ $labels.gen_ai_request_model }} ({{ $labels.gen_ai_provider_name }})"
# (severity, burn label, burn rate factor, long window, short window, for, budget spent)
BURN_TIERS = (
    ("critical", "fast", "14.4", "1h", "5m", "2m", "2% of a 30-day error budget in 1 hour"),
    ("warning", "slow", "6", "6h", "30m", "15m", "5% of a 30-day error budget in 6 hours"),
)


def _guarded(condition: str, window: str, t: Mapping[str, str]) -> str:
    """`condition`, kept only for models with at least the minimum call rate."""
    return f"(\n{condition}\n)\nand\n  {rec.requests_rate(window)} >= {t['min_request_rate']}"


def latency_alerts(t: Mapping[str, str], timing: rec.Timing) -> tuple[AlertRule, ...]:
    """ModelTailLatencyHigh (p95 and p99) and ModelTimeToFirstTokenHigh."""
    w = timing.window
    rules = [
        AlertRule(
            alert="ModelTailLatencyHigh",
            expr=_guarded(
                f"  {rec.duration_quantile(name, w)} > {t[f'latency_{name}_seconds']}", w, t
            ),
            for_=timing.for_("10m"),
            severity="warning",
            labels={"quantile": quantile},
            summary=f"{name} call duration of {MODEL} is high",
            description=(
                f"{name} of calls to {MODEL} over {w} is {{{{ $value | humanizeDuration }}}}, "
                f"above the {t[f'latency_{name}_seconds']} s threshold for {timing.for_('10m')}."
            ),
        )
        for name, quantile in (("p95", "0.95"), ("p99", "0.99"))
    ]
    rules.append(
        AlertRule(
            alert="ModelTimeToFirstTokenHigh",
            expr=_guarded(f"  {rec.ttft_p95(w)} > {t['ttft_p95_seconds']}", w, t),
            for_=timing.for_("10m"),
            severity="warning",
            summary=f"Time to first token of {MODEL} is high",
            description=(
                f"p95 time to the first streamed chunk from {MODEL} over {w} is "
                f"{{{{ $value | humanizeDuration }}}}, above the {t['ttft_p95_seconds']} s "
                f"threshold for {timing.for_('10m')}."
            ),
        )
    )
    return tuple(rules)


def error_budget_alerts(t: Mapping[str, str], timing: rec.Timing) -> tuple[AlertRule, ...]:
    """ModelErrorBudgetBurn: multiwindow, multi-burn-rate (Google SRE workbook, ch. 5)."""
    slo = t["availability_slo"]
    rules = []
    for severity, burn, factor, long, short, for_, spent in BURN_TIERS:
        limit = f"({factor} * (1 - {slo}))"
        condition = (
            f"  {rec.error_ratio(long)} > {limit}\nand\n  {rec.error_ratio(short)} > {limit}"
        )
        rules.append(
            AlertRule(
                alert="ModelErrorBudgetBurn",
                expr=_guarded(condition, long, t),
                for_=timing.for_(for_),
                severity=severity,
                labels={"burn": burn},
                summary=f"{MODEL} is burning its error budget {burn}",
                description=(
                    f"{{{{ $value | humanizePercentage }}}} of calls to {MODEL} failed over the "
                    f"last {long} (and over the last {short}): {factor}x the error budget of a "
                    f"{slo} availability SLO, i.e. {spent}."
                ),
            )
        )
    return tuple(rules)


def spend_alerts(t: Mapping[str, str], timing: rec.Timing) -> tuple[AlertRule, ...]:
    """ModelSpendBurnHigh (last hour) and ModelDailyBudgetAtRisk (predict_linear)."""
    # Spend over the next 24 h at the trend of the last 6 h: the 24 h integral of a linear
    # rate is 24 h times the rate 12 h from now.
    projected = f"predict_linear({rec.cost_rate(timing.window)}[6h], 12 * 3600) * 86400"
    return (
        AlertRule(
            alert="ModelSpendBurnHigh",
            expr=f"{rec.cost_rate('1h')} * 3600 > {t['spend_per_hour_usd']}",
            for_=timing.for_("15m"),
            severity="warning",
            summary=f"Spend on {MODEL} is above the hourly budget",
            description=(
                f"{MODEL} cost {{{{ $value | humanize }}}} USD over the last hour, above the "
                f"budget of {t['spend_per_hour_usd']} USD per hour."
            ),
        ),
        AlertRule(
            alert="ModelDailyBudgetAtRisk",
            expr=f"{projected} > {t['daily_budget_usd']}",
            for_=timing.for_("30m"),
            severity="warning",
            summary=f"Spend on {MODEL} is projected to exceed the daily budget",
            description=(
                f"At the trend of the last 6 hours, {MODEL} will cost "
                f"{{{{ $value | humanize }}}} USD over the next 24 hours, above the daily "
                f"budget of {t['daily_budget_usd']} USD."
            ),
        ),
    )


def quality_alerts(t: Mapping[str, str], timing: rec.Timing) -> tuple[AlertRule, ...]:
    """ModelRetryStorm, ModelLowConfidenceHigh and ModelOutputNotRepeatable."""
    w = timing.window
    low = f"sum by ({MODEL_LABELS}) (rate({s.LOW_CONFIDENCE}[30m]))"
    measured = f"sum by ({MODEL_LABELS}) (rate({s.CONFIDENCE}_count[30m]))"
    repeats = s.REPEAT_OUTPUTS
    different = f'sum by ({MODEL_LABELS}) (rate({repeats}{{result="different"}}[1h]))'
    checked = f"sum by ({MODEL_LABELS}) (rate({repeats}[1h]))"
    checks = f"sum by ({MODEL_LABELS}) (increase({repeats}[1h]))"
    return (
        AlertRule(
            alert="ModelRetryStorm",
            expr=_guarded(f"  {rec.retry_ratio(w)} > {t['retry_ratio']}", w, t),
            for_=timing.for_("10m"),
            severity="warning",
            summary=f"Retry storm on {MODEL}",
            description=(
                f"Calls to {MODEL} are retried {{{{ $value | humanizePercentage }}}} of the time "
                f"(retries per call over {w}), above the {t['retry_ratio']} threshold."
            ),
        ),
        AlertRule(
            alert="ModelLowConfidenceHigh",
            expr=(
                f"(\n  {low}\n/\n  ({measured} > 0)\n) > {t['low_confidence_ratio']}\n"
                f"and\n  {measured} >= {t['min_request_rate']}"
            ),
            for_=timing.for_("30m"),
            severity="warning",
            summary=f"Many low-confidence answers from {MODEL}",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the answers from {MODEL} with a "
                f"measured confidence were low-confidence over the last 30 minutes, above the "
                f"{t['low_confidence_ratio']} threshold: more answers need human review."
            ),
        ),
        AlertRule(
            alert="ModelOutputNotRepeatable",
            expr=(
                f"(\n  {different}\n/\n  ({checked} > 0)\n) > {t['not_repeatable_ratio']}\n"
                f"and\n  {checks} >= {t['min_repeat_checks']}"
            ),
            for_=timing.for_("15m"),
            severity="warning",
            summary=f"{MODEL} does not repeat its temperature-0 answers",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the temperature-0 repeat checks of "
                f"{MODEL} got a different answer over the last hour, above the "
                f"{t['not_repeatable_ratio']} threshold."
            ),
        ),
    )
