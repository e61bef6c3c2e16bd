"""The /metrics summary the probe reads: successful-call latency, errors by type, baselines."""

from __future__ import annotations

import pytest

from sidecar.tools.report import summarize

LABELS = 'gen_ai_request_model="m",upstream="openai"'


def exposition(ok: int, errors_429: int, cost: float) -> str:
    """`ok` calls of 0.3 s and `errors_429` of 0.005 s, as the sidecar would export them."""
    duration = "gen_ai_client_operation_duration_seconds"
    lines = [
        f'model_sidecar_requests_total{{{LABELS},outcome="ok",http_status_code="200"}} {ok}',
        f'model_sidecar_requests_total{{{LABELS},outcome="upstream_error",http_status_code="429"}}'
        f" {errors_429}",
        f"model_sidecar_cost_usd_total{{{LABELS}}} {cost}",
    ]
    for error_type, count, seconds in (("", ok, 0.3), ("429", errors_429, 0.005)):
        labels = f'{LABELS},error_type="{error_type}"'
        for le in ("0.01", "0.16", "0.32", "+Inf"):
            inside = count if float(le) >= seconds else 0
            lines.append(f'{duration}_bucket{{{labels},le="{le}"}} {inside}')
        lines.append(f"{duration}_sum{{{labels}}} {count * seconds}")
        lines.append(f"{duration}_count{{{labels}}} {count}")
    return "\n".join(lines) + "\n"


def test_successful_latency_errors_by_type_and_cost_per_call() -> None:
    (stats,) = summarize(exposition(ok=8, errors_429=8, cost=0.016))
    assert stats.calls == 16 and stats.errors == 8
    assert stats.errors_by_type == {"429": 8}
    # Fast 429s pull the all-calls median down; the successful calls' median is not fooled.
    assert stats.duration.quantile(0.5) == pytest.approx(0.01)
    assert 0.16 < (stats.ok_duration.quantile(0.5) or 0) <= 0.32
    assert stats.ok_duration.mean == pytest.approx(0.3)
    assert (stats.ok_duration.quantile(0.99) or 0) <= 0.32
    assert stats.cost_per_call == pytest.approx(0.001)


def test_a_baseline_leaves_only_what_happened_since() -> None:
    before = exposition(ok=5, errors_429=5, cost=0.01)
    (stats,) = summarize(exposition(ok=8, errors_429=6, cost=0.016), baseline=before)
    assert stats.calls == 4 and stats.errors_by_type == {"429": 1}
    assert stats.ok_duration.count == 3 and stats.ok_duration.mean == pytest.approx(0.3)
    assert stats.cost_usd == pytest.approx(0.006)
