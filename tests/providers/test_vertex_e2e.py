"""Vertex AI end to end: google-genai in Vertex mode (its default v1beta1, and v1) for Gemini,
anthropic.AnthropicVertex for Claude; both with test OAuth tokens that need no network."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.simulate.profiles import default_profiles
from sidecar.simulate.text import count_tokens
from tests.helpers.providers import MESSAGES, PROMPT, Clients, Rig, check_call
from tests.helpers.sdk import API_KEY
from tests.helpers.simulator import RunningSimulator

PROFILES = default_profiles()
VERTEX = "gcp.vertex_ai"
CLAUDE = "claude-sonnet-4@20250514"


def dumped(reply: Any) -> dict[str, Any]:
    return reply.model_dump(exclude={"sdk_http_response"})  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", [None, "v1"], ids=["default-v1beta1", "v1"])
async def test_gemini_generate_stream_and_embed(
    version: str | None, rig: Rig, clients: Clients, simulator: RunningSimulator
) -> None:
    direct = clients.vertex_genai(simulator.url, version)
    proxied = clients.vertex_genai(rig.url, version)
    model = "gemini-2.5-flash"
    expected = await direct.aio.models.generate_content(model=model, contents=PROMPT)
    reply = await proxied.aio.models.generate_content(model=model, contents=PROMPT)
    sent = simulator.sim.received[-1]
    prefix = f"/{version or 'v1beta1'}/projects/p/locations/us-central1/publishers/google/models"
    assert sent.path_qs == f"{prefix}/{model}:generateContent"
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert dumped(reply) == dumped(expected)
    stream = await proxied.aio.models.generate_content_stream(model=model, contents=PROMPT)
    text = "".join([chunk.text async for chunk in stream])
    assert text == reply.text
    embedded = await proxied.aio.models.embed_content(
        model="gemini-embedding-001", contents=["one", "two"]
    )
    assert len(embedded.embeddings) == 2

    whole, streamed, embedding = await rig.records_after(3)
    usage = expected.usage_metadata
    output = usage.candidates_token_count + usage.thoughts_token_count
    common: dict[str, Any] = {
        "provider": VERTEX,
        "operation": "generate_content",
        "model": model,
        "response_model": model,
        "tokens": (usage.prompt_token_count, output),
        "price": ("google", model),
    }
    await check_call(rig, whole, **common)
    assert whole.reasoning_tokens == usage.thoughts_token_count > 0
    await check_call(rig, streamed, first_chunk_after=PROFILES[model].ttft_s, **common)
    await check_call(
        rig,
        embedding,
        provider=VERTEX,
        operation="embeddings",
        model="gemini-embedding-001",
        response_model=None,
        tokens=(count_tokens("one") + count_tokens("two"), None),
        price=("google", "gemini-embedding-001"),
    )
    labels = {"gen_ai_provider_name": VERTEX, "upstream": "vertex"}
    requests = "model_sidecar_requests_total"
    assert await rig.series(requests, gen_ai_operation_name="generate_content", **labels) == 2
    await rig.assert_no_credentials()


async def test_text_embedding_predict(rig: Rig, clients: Clients) -> None:
    texts = ["first text", "a much longer second text"]
    vertex = clients.vertex_genai(rig.url, "v1")
    await vertex.aio.models.embed_content(model="text-embedding-005", contents=texts)
    (record,) = await rig.records_after(1)
    assert record.path.endswith("/models/text-embedding-005:predict")
    assert (record.request.operation, record.provider_name) == ("embeddings", VERTEX)
    assert record.input_tokens == sum(count_tokens(text) for text in texts)


async def test_claude_create_and_stream(
    rig: Rig, clients: Clients, simulator: RunningSimulator
) -> None:
    direct, proxied = clients.anthropic_vertex(simulator.url), clients.anthropic_vertex(rig.url)
    kwargs: dict[str, Any] = {"model": CLAUDE, "max_tokens": 100, "messages": MESSAGES}
    expected = await direct.messages.with_raw_response.create(**kwargs)
    got = await proxied.messages.with_raw_response.create(**kwargs)
    assert got.http_response.content == expected.http_response.content
    sent = simulator.sim.received[-1]
    assert sent.path_qs == (
        f"/v1/projects/p/locations/us-east5/publishers/anthropic/models/{CLAUDE}:rawPredict"
    )
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"

    async def events(client: Any) -> list[dict[str, Any]]:
        async with client.messages.stream(**kwargs) as stream:
            return [event.model_dump() async for event in stream]

    assert await events(proxied) == await events(direct)
    message = await expected.parse()
    whole, streamed = await rig.records_after(2)
    usage = message.usage
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    common: dict[str, Any] = {
        "provider": VERTEX,
        "operation": "chat",
        "model": CLAUDE,
        "response_model": CLAUDE,
        "tokens": (prompt, usage.output_tokens),
        "price": ("anthropic", CLAUDE),
    }
    await check_call(rig, whole, **common)
    assert whole.cache_read_tokens == usage.cache_read_input_tokens > 0
    await check_call(rig, streamed, first_chunk_after=PROFILES[CLAUDE].ttft_s, **common)
    labels = {"gen_ai_provider_name": VERTEX, "gen_ai_request_model": CLAUDE}
    assert await rig.series("model_sidecar_requests_total", **labels) == 2
    assert await rig.series("model_sidecar_cost_usd_total", **labels) == pytest.approx(
        (whole.cost_usd or 0) + (streamed.cost_usd or 0)
    )
    await rig.assert_no_credentials()
