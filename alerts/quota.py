"""Provider quota headroom: the time until a provider's rate limit runs out at the current
rate (from the rate-limit gauges the sidecars export from every response's rate-limit
headers), and ProviderQuotaExhaustionSoon when that comes before the window resets.

Every pod calling a provider with the same key sees the same quota, so the fleet's view is the
lowest remaining count and the latest reset reported for each upstream, model and kind.
"""

from __future__ import annotations

from collections.abc import Mapping

from alerts.model import AlertRule, RecordingRule, Runbook
from sidecar.telemetry import conventions as c

QUOTA_LABELS = "upstream, gen_ai_request_model, kind"
REMAINING = f"upstream_model_kind:{c.RATELIMIT_REMAINING.name}:min"
RESET = f"upstream_model_kind:{c.RATELIMIT_RESET.name}:max"
EXHAUSTION = f"upstream_model_kind:{c.RATELIMIT_REMAINING.name}:exhaustion_seconds"
# How far ahead the alert looks: time to act (shed load, move traffic) before the 429s.
HORIZON_SECONDS = 900
# The window over which the current rate of consumption is measured.
RATE_WINDOW = "10m"


def quota_rules() -> tuple[RecordingRule, ...]:
    """The fleet's remaining quota and reset, and the seconds to exhaustion at the current rate
    (only while the remaining count falls: a flat or refilling quota has no exhaustion)."""
    return (
        RecordingRule(REMAINING, f"min by ({QUOTA_LABELS}) ({c.RATELIMIT_REMAINING.name})"),
        RecordingRule(RESET, f"max by ({QUOTA_LABELS}) ({c.RATELIMIT_RESET.name})"),
        RecordingRule(EXHAUSTION, f"{REMAINING}\n/\n(-deriv({REMAINING}[{RATE_WINDOW}]) > 0)"),
    )


def quota_alerts(t: Mapping[str, str], for_: str) -> tuple[AlertRule, ...]:
    """ProviderQuotaExhaustionSoon: the quota runs out within the horizon and before its window
    resets (a reset that comes first refills it: no alert)."""
    del t  # no tunable settings: the horizon is fixed (docs/quota.md)
    window = (
        "{{ $labels.kind }} quota of {{ $labels.gen_ai_request_model }} at {{ $labels.upstream }}"
    )
    return (
        AlertRule(
            alert="ProviderQuotaExhaustionSoon",
            expr=(
                f"{EXHAUSTION} < {HORIZON_SECONDS}\nand on ({QUOTA_LABELS})\n{EXHAUSTION} < {RESET}"
            ),
            for_=for_,
            severity="warning",
            summary=f"The {window} runs out soon",
            description=(
                f"At the rate of the last {RATE_WINDOW}, the {window} runs out in "
                "{{ $value | humanizeDuration }}, before its window resets: expect 429s."
            ),
        ),
    )


RUNBOOK = Runbook(
    alert="ProviderQuotaExhaustionSoon",
    meaning=(
        "The provider's rate limit (requests or tokens per window, from its `x-ratelimit-*` or "
        "`anthropic-ratelimit-*` headers) falls fast enough to run out within 15 minutes, "
        "before the window resets. After that every call gets a 429 until the reset."
    ),
    checks=(
        f"Which quota: `{c.RATELIMIT_REMAINING.name}` / `{c.RATELIMIT_LIMIT.name}` by `kind` "
        "(`requests`, `tokens`, `input_tokens`, `output_tokens`) and "
        f"`{c.RATELIMIT_RESET.name}`: a tokens quota falling with steady calls means bigger "
        "prompts or answers.",
        f"Who is spending it: `sum by (gen_ai_request_model) (rate({c.TOKENS.name}[10m]))`, and "
        f"with attribution `sum by (attribution) (rate({c.ATTRIBUTION_REQUESTS.name}[10m]))`; "
        "a retry storm (ModelRetryStorm) spends quota twice.",
        "Someone else on the same key? The remaining count falls faster than the sidecars' "
        "own call rate explains: another service or a batch job shares the organisation's "
        "limit.",
    ),
    stop_loss=(
        "Shed or delay batch traffic, move part of the traffic to another model or deployment "
        "with its own quota (an experiment split), lower `max_tokens`; ask the provider for a "
        "higher tier if this is the new normal."
    ),
)
