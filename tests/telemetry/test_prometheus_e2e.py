"""Real SDK calls through a real sidecar: /metrics holds exactly what the provider reported,
and a real Prometheus scraping the admin listener answers the dashboards' p95 query."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anthropic
import openai
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from sidecar.app import Sidecar
from tests.helpers.prometheus import running_prometheus
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY

MESSAGES: list[Any] = [
    {"role": "user", "content": "Tell the sidecar something worth measuring today."}
]
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello there, Gemini model."}]}]}
TOKEN_TYPES = ("input", "output", "cache_read", "cache_creation", "reasoning")
# The dashboards' latency panel.
P95_BY_MODEL = (
    "histogram_quantile(0.95, sum by (le, gen_ai_request_model) "
    "(rate(gen_ai_client_operation_duration_seconds_bucket[1m])))"
)


class Expected:
    """What the provider told the app, added up per call: the oracle for /metrics."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str, str]] = Counter()  # (model, outcome, status)
        self.tokens: Counter[str] = Counter()
        self.streamed_models: set[str] = set()

    def call(self, model: str, *, status: int = 200, stream: bool = False) -> None:
        outcome = "ok" if status < 400 else "upstream_error"
        self.calls[(model, outcome, str(status))] += 1
        if stream:
            self.streamed_models.add(model)

    def usage(self, **counts: int | None) -> None:
        for token_type, count in counts.items():
            self.tokens[token_type] += count or 0


def openai_usage(expected: Expected, usage: Any) -> None:
    prompt_details = usage.prompt_tokens_details
    completion_details = usage.completion_tokens_details
    expected.usage(
        input=usage.prompt_tokens,
        output=usage.completion_tokens,
        cache_read=prompt_details.cached_tokens if prompt_details else 0,
        reasoning=completion_details.reasoning_tokens if completion_details else 0,
    )


def anthropic_usage(expected: Expected, usage: Any) -> None:
    cache_read = usage.cache_read_input_tokens or 0
    cache_creation = usage.cache_creation_input_tokens or 0
    expected.usage(
        input=usage.input_tokens + cache_read + cache_creation,
        output=usage.output_tokens,
        cache_read=cache_read,
        cache_creation=cache_creation,
    )


def gemini_usage(expected: Expected, body: bytes, stream: bool) -> None:
    if stream:
        events = [orjson.loads(line[5:]) for line in body.splitlines() if line.startswith(b"data:")]
        metadata = events[-1]["usageMetadata"]
    else:
        metadata = orjson.loads(body)["usageMetadata"]
    thoughts = metadata.get("thoughtsTokenCount", 0)
    expected.usage(
        input=metadata["promptTokenCount"],
        output=metadata.get("candidatesTokenCount", 0) + thoughts,
        cache_read=metadata.get("cachedContentTokenCount", 0),
        reasoning=thoughts,
    )


async def make_known_calls(proxy_url: str) -> Expected:
    """Streaming and not, all three protocols, one upstream error."""
    expected = Expected()
    oai = openai.AsyncOpenAI(base_url=f"{proxy_url}/v1", api_key=API_KEY, max_retries=0)
    completion = await oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    expected.call("gpt-4o-mini")
    openai_usage(expected, completion.usage)
    reasoning = await oai.chat.completions.create(model="o3-mini", messages=MESSAGES)
    expected.call("o3-mini")
    openai_usage(expected, reasoning.usage)
    stream = await oai.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    expected.call("gpt-4o", stream=True)
    openai_usage(expected, chunks[-1].usage)
    with pytest.raises(openai.InternalServerError):
        await oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={"x-sim-status": "503"},
        )
    expected.call("gpt-4o-mini", status=503)

    claude = anthropic.AsyncAnthropic(base_url=proxy_url, api_key=API_KEY, max_retries=0)
    message = await claude.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=64,
        messages=MESSAGES,
    )
    expected.call("claude-3-5-haiku-latest")
    anthropic_usage(expected, message.usage)
    async with claude.messages.stream(
        model="claude-sonnet-4",
        max_tokens=64,
        messages=MESSAGES,
    ) as message_stream:
        final = await message_stream.get_final_message()
    expected.call("claude-sonnet-4", stream=True)
    anthropic_usage(expected, final.usage)

    async with aiohttp.ClientSession(headers={"x-goog-api-key": API_KEY}) as http:
        for model, stream_call in (("gemini-2.5-flash", False), ("gemini-2.0-flash", True)):
            method = "streamGenerateContent?alt=sse" if stream_call else "generateContent"
            url = f"{proxy_url}/v1beta/models/{model}:{method}"
            async with http.post(url, json=GEMINI_BODY) as response:
                assert response.status == 200
                body = await response.read()
            expected.call(model, stream=stream_call)
            gemini_usage(expected, body, stream_call)
    return expected


async def scrape(admin_url: str) -> tuple[str, list[Sample]]:
    async with aiohttp.ClientSession() as http, http.get(f"{admin_url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    return text, samples


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def assert_metrics_match(samples: list[Sample], expected: Expected) -> None:
    requests = "model_sidecar_requests_total"
    seen = Counter(
        {
            (
                s.labels["gen_ai_request_model"],
                s.labels["outcome"],
                s.labels["http_status_code"],
            ): int(s.value)
            for s in samples
            if s.name == requests
        }
    )
    assert seen == expected.calls
    providers = {s.labels["gen_ai_provider_name"] for s in samples if s.name == requests}
    assert providers == {"openai", "anthropic", "gcp.gemini"}

    duration = "gen_ai_client_operation_duration_seconds_count"
    assert total(samples, duration) == sum(expected.calls.values())
    assert total(samples, duration, error_type="503", gen_ai_request_model="gpt-4o-mini") == 1
    assert total(samples, duration, error_type="") == sum(expected.calls.values()) - 1

    for token_type in TOKEN_TYPES:
        counted = total(samples, "model_sidecar_tokens_total", gen_ai_token_type=token_type)
        assert counted == expected.tokens[token_type], token_type
    assert expected.tokens["cache_read"] > 0 and expected.tokens["reasoning"] > 0
    assert expected.tokens["cache_creation"] > 0
    for token_type in ("input", "output"):
        usage_sum = total(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type=token_type)
        assert usage_sum == expected.tokens[token_type]
        # The failed call reported no usage and records none.
        usage_count = total(
            samples, "gen_ai_client_token_usage_count", gen_ai_token_type=token_type
        )
        assert usage_count == sum(expected.calls.values()) - 1

    ttfc = "gen_ai_client_operation_time_to_first_chunk_seconds_count"
    ttfc_models = {s.labels["gen_ai_request_model"] for s in samples if s.name == ttfc}
    assert ttfc_models == expected.streamed_models
    assert total(samples, ttfc) == len(expected.streamed_models)
    per_chunk = "gen_ai_client_operation_time_per_output_chunk_seconds_count"
    assert {s.labels["gen_ai_request_model"] for s in samples if s.name == per_chunk} <= (
        expected.streamed_models
    )
    assert total(samples, per_chunk) > 0
    assert total(samples, "model_sidecar_in_flight_requests") == 0
    assert total(samples, "model_sidecar_overhead_seconds_count") == sum(expected.calls.values())


@pytest.mark.slow
async def test_metrics_are_exact_and_real_prometheus_answers_p95_per_model(
    sidecar: Sidecar, records: RecordingSink, tmp_path: Path
) -> None:
    admin = urlsplit(sidecar.admin_url)
    async with running_prometheus([admin.netloc], tmp_path / "prometheus") as prometheus:
        # Calls after the first scrape, so rate() sees them arrive.
        await prometheus.wait_for_series('up{job="model-sidecar"} == 1')
        expected = await make_known_calls(sidecar.proxy_url)
        await records.wait_for(sum(expected.calls.values()))

        text, samples = await scrape(sidecar.admin_url)
        assert API_KEY not in text
        assert_metrics_match(samples, expected)

        models = {model for model, _, _ in expected.calls}
        # A series' first sample is its starting point, not an increase: once Prometheus has
        # scraped every model's series, a second round gives rate() something to see.
        scraped = "gen_ai_client_operation_duration_seconds_count"
        await prometheus.wait_for_series(f"sum by (gen_ai_request_model) ({scraped})", len(models))
        await make_known_calls(sidecar.proxy_url)
        # `> 0` drops NaN results: every model's p95 is a real number.
        series = await prometheus.wait_for_series(f"{P95_BY_MODEL} > 0", count=len(models))
        assert {item["metric"]["gen_ai_request_model"] for item in series} == models
        assert len(series) == len(models)
        for item in series:
            assert 0 < float(item["value"][1]) <= 600
