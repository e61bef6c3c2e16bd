"""Quota headroom end to end: the simulated providers send their real rate-limit header sets,
official SDK calls go through a real sidecar, and /metrics holds the limit, remaining count and
reset of each window; malformed headers are counted and never fail the call."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from sidecar.config.models import TelemetryConfig
from sidecar.record import RateLimit
from sidecar.simulate.quota import Quotas, QuotaState
from sidecar.simulate.simulator import Simulator
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.prometheus import PrometheusSink
from sidecar.telemetry.registry import MetricRegistry
from tests.helpers.metrics import scrape, series, total
from tests.helpers.records import make_record
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import Sidecars
from tests.helpers.simulator import running_simulator

MESSAGES: list[Any] = [{"role": "user", "content": "How much quota is left?"}]


async def test_openai_and_anthropic_quota_reach_metrics_and_the_429_follows(
    sdk: SDKClients,
) -> None:
    sim = Simulator(fastest=True, quotas=Quotas(requests=5, tokens=100_000, window_s=600))
    async with running_simulator(sim) as running:
        sidecars = Sidecars(running.url, [])
        try:
            sidecar = await sidecars.start()
            client = sdk.openai(sidecar.proxy_url)
            for _ in range(5):
                await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            with pytest.raises(openai.RateLimitError):
                await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            claude = sdk.anthropic(sidecar.proxy_url)
            for _ in range(2):
                await claude.messages.create(
                    model="claude-sonnet-4-5", max_tokens=50, messages=MESSAGES
                )
            samples = await scrape(sidecar.admin_url)
        finally:
            await sidecars.stop_all()
    openai_requests = {
        "upstream": "openai",
        "gen_ai_request_model": "gpt-4o-mini",
        "kind": "requests",
    }
    assert total(samples, "model_sidecar_ratelimit_limit", **openai_requests) == 5
    assert total(samples, "model_sidecar_ratelimit_remaining", **openai_requests) == 0
    reset = total(samples, "model_sidecar_ratelimit_reset_seconds", **openai_requests)
    assert 590 < reset <= 600
    openai_tokens = {**openai_requests, "kind": "tokens"}
    assert total(samples, "model_sidecar_ratelimit_limit", **openai_tokens) == 100_000
    assert 0 < total(samples, "model_sidecar_ratelimit_remaining", **openai_tokens) < 100_000
    # The 429 itself was counted as one: it carries the same headers.
    assert total(samples, "model_sidecar_requests_total", http_status_code="429") == 1

    kinds = {
        sample.labels["kind"]
        for sample in series(samples, "model_sidecar_ratelimit_remaining")
        if sample.labels["upstream"] == "anthropic"
    }
    assert kinds == {"requests", "tokens", "input_tokens", "output_tokens"}
    claude_requests = {
        "upstream": "anthropic",
        "gen_ai_request_model": "claude-sonnet-4-5",
        "kind": "requests",
    }
    assert total(samples, "model_sidecar_ratelimit_remaining", **claude_requests) == 3
    # RFC 3339 resets (whole seconds) read as seconds from now.
    assert 590 < total(samples, "model_sidecar_ratelimit_reset_seconds", **claude_requests) <= 601
    assert total(samples, "model_sidecar_ratelimit_header_errors_total") == 0


def test_the_sink_counts_malformed_headers_and_bounds_the_model_label() -> None:
    registry = MetricRegistry(TelemetryConfig(max_model_labels=1), TelemetryDrops())
    sink = PrometheusSink(registry)
    first = make_record(rate_limits=(RateLimit("requests", 100, 40, 12.5),))
    sink.call_started(first)
    sink.call_finished(first)
    second = make_record(rate_limits=(RateLimit("tokens", None, 7, None),), rate_limit_errors=2)
    second.request.request_model = "another-model"
    sink.call_started(second)
    sink.call_finished(second)
    text = registry.render("")[0].decode()
    assert (
        'model_sidecar_ratelimit_remaining{gen_ai_request_model="gpt-4o-mini",kind="requests",'
        'upstream="openai"} 40.0' in text
    )
    # Past the model cap the model label is `other`, as on every other metric.
    assert (
        'model_sidecar_ratelimit_remaining{gen_ai_request_model="other",kind="tokens",'
        'upstream="openai"} 7.0' in text
    )
    assert 'model_sidecar_ratelimit_limit{gen_ai_request_model="other"' not in text
    assert 'model_sidecar_ratelimit_header_errors_total{upstream="openai"} 2.0' in text


class GarbledQuotas(Quotas):
    """A provider whose rate-limit headers are broken (a proxy in front of it mangles them)."""

    @staticmethod
    def headers(provider: str, state: QuotaState) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": "lots",
            "x-ratelimit-remaining-requests": "-1",
            "x-ratelimit-reset-requests": "soon",
            "x-ratelimit-remaining-tokens": str(state.tokens_remaining),
        }


async def test_malformed_headers_are_counted_and_the_call_is_untouched(sdk: SDKClients) -> None:
    sim = Simulator(fastest=True, quotas=GarbledQuotas())
    async with running_simulator(sim) as running:
        sidecars = Sidecars(running.url, [])
        try:
            sidecar = await sidecars.start()
            client = sdk.openai(sidecar.proxy_url)
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=MESSAGES
            )
            samples = await scrape(sidecar.admin_url)
        finally:
            await sidecars.stop_all()
    # The app got its answer and the provider's headers exactly as sent.
    assert raw.http_response.status_code == 200
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-ratelimit-limit-requests"] == "lots"
    assert total(samples, "model_sidecar_ratelimit_header_errors_total", upstream="openai") == 3
    assert total(samples, "model_sidecar_requests_total", outcome="ok") == 1
    # The one good header still counts; the broken ones made no series.
    assert [s.labels["kind"] for s in series(samples, "model_sidecar_ratelimit_remaining")] == [
        "tokens"
    ]
    assert series(samples, "model_sidecar_ratelimit_limit") == []
