"""Threshold colours shared by the dashboards. Red steps sit at the default alert thresholds
of alerts/ (read from alerts/settings.py, so the two never drift), orange at an earlier level."""

from __future__ import annotations

from alerts.settings import setting_named
from dashboards.panels import GREEN, RED, Levels, high_is_bad, low_is_bad


def tidy(value: float) -> float:
    """`value` rounded to 6 decimals, as an int when whole (30, not 30.0, in the JSON)."""
    value = round(value, 6)
    return int(value) if value.is_integer() else value


def alert_default(name: str) -> float:
    """The default of an alert setting (its `--set` name in alerts/settings.py)."""
    return tidy(float(setting_named(name).default))


def warn_at_half(name: str) -> Levels:
    """Orange from half the alert threshold `name`, red from the threshold itself."""
    threshold = alert_default(name)
    return high_is_bad(tidy(threshold / 2), threshold)


# ModelTailLatencyHigh: p95 above 30 s (orange), p99 above 60 s (red).
LATENCY = high_is_bad(alert_default("latency_p95_seconds"), alert_default("latency_p99_seconds"))
# ModelTimeToFirstTokenHigh: p95 time to first chunk.
FIRST_CHUNK = warn_at_half("ttft_p95_seconds")
# ModelErrorBudgetBurn: orange when errors spend the budget of the availability target as
# fast as it accrues (0.5 % for 99.5 %), red at ten times that.
_ERROR_BUDGET = tidy(1 - alert_default("availability_slo"))
ERRORS = high_is_bad(_ERROR_BUDGET, tidy(10 * _ERROR_BUDGET))
# ModelSpendBurnHigh: spend per model per hour.
SPEND_PER_HOUR = warn_at_half("spend_per_hour_usd")
# ModelRetryStorm: retries (client and sidecar) per call.
RETRIES = warn_at_half("retry_ratio")
# ModelLowConfidenceHigh: share of measured answers below the confidence threshold.
LOW_CONFIDENCE = warn_at_half("low_confidence_ratio")
# ModelOutputNotRepeatable: red when more than the threshold of repeats differ.
_NOT_REPEATABLE = alert_default("not_repeatable_ratio")
REPEATABLE = low_is_bad(tidy(1 - _NOT_REPEATABLE), tidy(1 - _NOT_REPEATABLE / 2))
# No alert: a voice agent feels slow past about a second to its first audio.
REALTIME_FIRST_OUTPUT = high_is_bad(0.8, 1.5)
# No alert: the sidecar's own time per call, expected well under a millisecond.
OVERHEAD = high_is_bad(0.001, 0.005)
# ModelSidecarTelemetryDropping: any drop at all.
ANY_LOSS = Levels(GREEN, ((1e-6, RED),))
