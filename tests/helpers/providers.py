"""Every provider's official client pointed at a sidecar whose every upstream is the simulator,
and what the tests check of each call: its record, its span, its /metrics series, no secret."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from genai_prices import Usage, calc_price

from sidecar.app import Sidecar
from sidecar.record import CallRecord
from tests.helpers.metrics import scrape
from tests.helpers.otlp import OtlpReceiver, ReceivedSpan
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY

# Every built-in upstream this providers need (bedrock aside).
UPSTREAMS = ("openai", "anthropic", "gemini", "azure", "vertex", "ollama")
AZURE_API_VERSION = "2024-10-21"
PROMPT = "Explain the sidecar pattern in two sentences, please."
MESSAGES = [{"role": "user", "content": PROMPT}]


def upstreams_at(url: str, **extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Config `upstreams`: every built-in name at `url`, with `extra` keys per name."""
    return {name: {"url": url, **extra.get(name, {})} for name in UPSTREAMS}


def expected_cost(provider_id: str, model: str, record: CallRecord) -> float:
    """What genai-prices says `record`'s usage of `model` costs at `provider_id`."""
    usage = Usage(
        input_tokens=record.input_tokens or 0,
        output_tokens=record.output_tokens or 0,
        cache_read_tokens=record.cache_read_tokens or 0,
        cache_write_tokens=record.cache_creation_tokens or 0,
        input_audio_tokens=record.input_audio_tokens or 0,
    )
    return float(calc_price(usage, model, provider_id=provider_id).total_price)


class Clients:
    """The vendors' official async clients, made for a test and closed at its end; every
    one carries API_KEY (as its key or its OAuth token)."""

    def __init__(self) -> None:
        self._closers: list[Any] = []

    def azure(self, base: str) -> Any:
        """openai.AsyncAzureOpenAI: deployment style paths with an `api-key` header."""
        import openai

        client = openai.AsyncAzureOpenAI(
            azure_endpoint=base, api_key=API_KEY, api_version=AZURE_API_VERSION, max_retries=0
        )
        self._closers.append(client.close)
        return client

    def openai(self, base_url: str) -> Any:
        """openai.AsyncOpenAI at exactly `base_url` (e.g. .../openai/v1/ for Azure's v1 API)."""
        import openai

        client = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
        self._closers.append(client.close)
        return client

    def genai(self, base: str, api_version: str | None = None) -> Any:
        """google-genai for the Gemini API; None: its default API version (v1)."""
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=base, api_version=api_version)
        client = genai.Client(api_key=API_KEY, http_options=options)
        self._closers.append(client.aio.aclose)
        return client

    def vertex_genai(self, base: str, api_version: str | None = None) -> Any:
        """google-genai in Vertex mode with a test OAuth token (no Google account, no network);
        None: its default API version (v1beta1)."""
        import google.oauth2.credentials
        from google import genai
        from google.genai import types

        client = genai.Client(
            vertexai=True,
            project="p",
            location="us-central1",
            credentials=google.oauth2.credentials.Credentials(token=API_KEY),
            http_options=types.HttpOptions(base_url=base, api_version=api_version),
        )
        self._closers.append(client.aio.aclose)
        return client

    def anthropic_vertex(self, base: str) -> Any:
        """anthropic.AsyncAnthropicVertex with a test access token (no network auth)."""
        import anthropic

        client = anthropic.AsyncAnthropicVertex(
            region="us-east5",
            project_id="p",
            access_token=API_KEY,
            base_url=base + "/v1",
            max_retries=0,
        )
        self._closers.append(client.close)
        return client

    def ollama(self, base: str) -> Any:
        """ollama.AsyncClient (Ollama has no key; the canary rides in a header anyway)."""
        import ollama

        client = ollama.AsyncClient(host=base, headers={"Authorization": f"Bearer {API_KEY}"})
        self._closers.append(lambda: client.__aexit__(None, None, None))
        return client

    async def close(self) -> None:
        for close in self._closers:
            await close()


class Rig:
    """A sidecar with every upstream at the simulator, tracing to a receiver, recording."""

    def __init__(self, sidecar: Sidecar, records: RecordingSink, receiver: OtlpReceiver) -> None:
        self.sidecar = sidecar
        self.records = records
        self.receiver = receiver

    @property
    def url(self) -> str:
        return self.sidecar.proxy_url

    async def records_after(self, count: int) -> list[CallRecord]:
        """The `count` calls recorded since the test began (waiting for them)."""
        return (await self.records.wait_for(count))[-count:]

    async def span_of(self, record: CallRecord) -> ReceivedSpan:
        """The span the sidecar exported for `record` (waiting up to 10 s for it)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for span in self.receiver.spans:
                if span.span_id == record.span_id:
                    return span
            await asyncio.sleep(0.02)
        raise AssertionError(f"no span for the call to {record.request.request_model}")

    async def metrics_text(self) -> str:
        """The /metrics exposition as text."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.sidecar.admin_url + "/metrics") as response,
        ):
            return await response.text()

    async def series(self, name: str, **labels: str) -> float:
        """The sum of /metrics samples `name` with `labels`."""
        samples = await scrape(self.sidecar.admin_url)
        return sum(
            sample.value
            for sample in samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    async def assert_no_credentials(self) -> None:
        """The canary key reached neither /metrics nor any exported span."""
        assert API_KEY not in await self.metrics_text()
        assert API_KEY.encode() not in self.receiver.raw_bytes


async def check_call(
    rig: Rig,
    record: CallRecord,
    *,
    provider: str,
    operation: str,
    model: str | None,
    response_model: str | None,
    tokens: tuple[int | None, int | None],
    price: tuple[str, str] | None,
    first_chunk_after: float | None = None,
    api_type: str | None = None,
) -> None:
    """One successful call, as its record and its span tell it: provider and operation, models,
    exact tokens, its cost (`price`: genai-prices provider id and model; None: unpriced) and,
    for a stream, a first chunk no sooner than `first_chunk_after` seconds."""
    assert (record.outcome, record.http_status) == ("ok", 200)
    assert (record.provider_name, record.request.operation) == (provider, operation)
    assert (record.request.request_model, record.response_model) == (model, response_model)
    assert (record.input_tokens, record.output_tokens) == tokens
    assert record.request.api_type == api_type
    if price is None:
        assert record.cost_usd is None
    else:
        assert record.cost_usd is not None and record.cost_usd > 0
        assert record.cost_usd == pytest.approx(expected_cost(*price, record), rel=1e-9)
    if first_chunk_after is None:
        assert record.first_chunk is None
    else:
        ttfc = record.time_to_first_chunk
        assert ttfc is not None and first_chunk_after <= ttfc <= record.duration
    attributes = (await rig.span_of(record)).attributes
    expected = {
        "gen_ai.provider.name": provider,
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": model,
        "gen_ai.response.model": response_model,
        "gen_ai.usage.input_tokens": tokens[0],
        "gen_ai.usage.output_tokens": tokens[1],
        "openai.api.type": api_type,
        "model_sidecar.cost_usd": record.cost_usd,
        "gen_ai.response.time_to_first_chunk": record.time_to_first_chunk,
    }
    assert {key: attributes.get(key) for key in expected} == expected
