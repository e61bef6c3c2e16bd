"""Cost: the counter rises by exactly what genai-prices computes; overrides win; unknowns count."""

from __future__ import annotations

import logging
from decimal import Decimal

import aiohttp
import pytest
from genai_prices import Usage, calc_price

from sidecar.enrich.cost import PriceBook, TokenUsage
from sidecar.record import CallRecord
from tests.helpers.metrics import scrape, series, total
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

COST = "model_sidecar_cost_usd_total"
UNKNOWN = "model_sidecar_cost_unknown_total"
COST_HEADER = "x-model-sidecar-cost-usd"


def library_price(record: CallRecord, provider_id: str) -> float:
    """What genai-prices' own calc_price says the recorded call cost."""
    usage = Usage(
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_read_tokens=record.cache_read_tokens,
        cache_write_tokens=record.cache_creation_tokens,
        output_reasoning_tokens=record.reasoning_tokens,
    )
    model = record.response_model or record.request.request_model
    assert model is not None
    return float(calc_price(usage, model, provider_id=provider_id).total_price)


@pytest.mark.parametrize(
    ("provider", "provider_id", "model"),
    [
        ("openai", "openai", "gpt-4o-mini-2024-07-18"),
        ("openai", "openai", "o3-mini-2025-01-31"),
        ("anthropic", "anthropic", "claude-3-5-haiku-20241022"),
        ("anthropic", "anthropic", "claude-sonnet-4-20250514"),
        ("gcp.gemini", "google", "gemini-2.5-flash"),
        ("gcp.gemini", "google", "gemini-2.5-pro"),  # tiered above 200k input tokens
    ],
)
@pytest.mark.parametrize(
    "usage",
    [
        TokenUsage(input=1200, output=340),
        TokenUsage(input=5000, output=900, cache_read=3000, cache_write=800, reasoning=400),
        TokenUsage(input=250_000, output=2000, cache_read=100_000, reasoning=1500),
    ],
)
def test_cached_arithmetic_equals_calc_price(
    provider: str, provider_id: str, model: str, usage: TokenUsage
) -> None:
    book = PriceBook()
    expected = calc_price(usage.genai_usage(), model, provider_id=provider_id).total_price
    assert book.price(provider, (model,), usage) == expected
    # The second call is served from the cache and still agrees.
    assert book.price(provider, (model,), usage) == expected


async def test_openai_calls_cost_exactly_what_genai_prices_computes(
    sidecar_factory: SidecarFactory, records: RecordingSink, sdk: SDKClients
) -> None:
    sidecar = await sidecar_factory()
    client = sdk.openai(sidecar.proxy_url)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "price me " * 40}]
    )
    # A reasoning model, streamed: its cost arrives without a header, in the counter only.
    stream = await client.chat.completions.create(
        model="o3-mini", messages=[{"role": "user", "content": "think"}], stream=True
    )
    async for _ in stream:
        pass
    mini, reasoning = await records.wait_for(2)
    assert mini.cache_read_tokens and reasoning.reasoning_tokens  # cached and reasoning tokens
    expected_mini = library_price(mini, "openai")
    expected_reasoning = library_price(reasoning, "openai")
    assert expected_mini > 0 and expected_reasoning > 0
    assert float(raw.headers[COST_HEADER]) == expected_mini
    assert COST_HEADER.encode() not in raw.http_response.content

    samples = await scrape(sidecar.admin_url)
    assert total(samples, COST, gen_ai_request_model="gpt-4o-mini") == expected_mini
    assert total(samples, COST, gen_ai_request_model="o3-mini") == expected_reasoning
    assert series(samples, UNKNOWN) == []


async def test_anthropic_and_gemini_calls_cost_exactly_what_genai_prices_computes(
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
    sdk: SDKClients,
    simulator: RunningSimulator,
) -> None:
    sidecar = await sidecar_factory()
    claude = sdk.anthropic(sidecar.proxy_url)
    for model in ("claude-3-5-haiku-latest", "claude-sonnet-4"):  # cache writes; cache reads
        await claude.messages.create(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "cache " * 50}]
        )
    body = {"contents": [{"role": "user", "parts": [{"text": "think " * 30}]}]}
    url = sidecar.proxy_url + "/v1beta/models/gemini-2.5-flash:generateContent"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        assert response.status == 200
        gemini_header = float(response.headers[COST_HEADER])
    haiku, sonnet, gemini = await records.wait_for(3)
    assert haiku.cache_creation_tokens and sonnet.cache_read_tokens
    assert gemini.reasoning_tokens and gemini.cache_read_tokens
    samples = await scrape(sidecar.admin_url)
    for record, provider_id in ((haiku, "anthropic"), (sonnet, "anthropic"), (gemini, "google")):
        expected = library_price(record, provider_id)
        assert expected > 0
        model = record.request.request_model or ""
        assert total(samples, COST, gen_ai_request_model=model) == expected
    assert gemini_header == library_price(gemini, "google")


async def test_an_override_wins_over_genai_prices(
    sidecar_factory: SidecarFactory, records: RecordingSink, sdk: SDKClients
) -> None:
    override = {"input": 10.0, "output": 20.0, "cache_read": 1.0}
    sidecar = await sidecar_factory({"cost": {"overrides": {"gpt-4o-mini": override}}})
    client = sdk.openai(sidecar.proxy_url)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "override " * 40}]
    )
    (record,) = await records.wait_for(1)
    assert record.input_tokens and record.output_tokens and record.cache_read_tokens
    uncached = record.input_tokens - record.cache_read_tokens
    expected = float(
        (
            Decimal(uncached) * Decimal(10)
            + Decimal(record.cache_read_tokens) * Decimal(1)
            + Decimal(record.output_tokens) * Decimal(20)
        )
        / Decimal(1_000_000)
    )
    assert expected != library_price(record, "openai")
    assert float(raw.headers[COST_HEADER]) == expected
    samples = await scrape(sidecar.admin_url)
    assert total(samples, COST) == expected


async def test_an_unknown_model_adds_no_cost_counts_unknown_and_warns_once(
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
    sdk: SDKClients,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sidecar = await sidecar_factory()
    client = sdk.openai(sidecar.proxy_url)
    caplog.set_level(logging.WARNING, logger="sidecar.enrich.cost")
    for _ in range(3):
        raw = await client.chat.completions.with_raw_response.create(
            model="my-selfhosted-llm", messages=[{"role": "user", "content": "hi"}]
        )
        assert COST_HEADER not in raw.headers
    await records.wait_for(3)
    assert all(record.input_tokens and record.cost_usd is None for record in records.records)
    samples = await scrape(sidecar.admin_url)
    assert series(samples, COST) == []
    assert total(samples, UNKNOWN, gen_ai_request_model="my-selfhosted-llm") == 3
    warnings = [r for r in caplog.records if "my-selfhosted-llm" in r.getMessage()]
    assert len(warnings) == 1
