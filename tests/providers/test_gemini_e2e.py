"""The Gemini API end to end with google-genai: its default API version (v1) and v1beta;
generate, stream, embed (always `:batchEmbedContents`) and count tokens."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from sidecar.simulate.profiles import default_profiles
from sidecar.simulate.text import count_tokens
from tests.helpers.providers import PROMPT, Clients, Rig, check_call
from tests.helpers.sdk import API_KEY
from tests.helpers.simulator import RunningSimulator

PROFILES = default_profiles()
GEMINI = "gcp.gemini"
TEXTS = ["first text", "a second, longer text"]


def dumped(reply: Any) -> dict[str, Any]:
    """A google-genai reply without its HTTP metadata (the sidecar adds its own headers)."""
    return reply.model_dump(exclude={"sdk_http_response"})  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", [None, "v1beta"], ids=["default-v1", "v1beta"])
async def test_generate_stream_embed_and_count(
    version: str | None, rig: Rig, clients: Clients, simulator: RunningSimulator
) -> None:
    direct, proxied = clients.genai(simulator.url, version), clients.genai(rig.url, version)
    model = "gemini-2.0-flash"
    expected = await direct.aio.models.generate_content(model=model, contents=PROMPT)
    reply = await proxied.aio.models.generate_content(model=model, contents=PROMPT)
    sent = simulator.sim.received[-1]
    assert sent.path_qs == f"/{version or 'v1'}/models/{model}:generateContent"
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert dumped(reply) == dumped(expected)
    chunks = [
        dumped(c)
        async for c in await proxied.aio.models.generate_content_stream(
            model=model, contents=PROMPT
        )
    ]
    assert simulator.sim.received[-1].path_qs.endswith(":streamGenerateContent?alt=sse")
    direct_chunks = [
        dumped(c)
        async for c in await direct.aio.models.generate_content_stream(model=model, contents=PROMPT)
    ]
    assert chunks == direct_chunks
    embedded = await proxied.aio.models.embed_content(model="gemini-embedding-001", contents=TEXTS)
    assert simulator.sim.received[-1].path_qs.endswith("gemini-embedding-001:batchEmbedContents")
    assert len(embedded.embeddings) == 2
    counted = await proxied.aio.models.count_tokens(model=model, contents=PROMPT)
    assert counted.total_tokens == count_tokens(PROMPT)

    whole, streamed, embedding, counting = await rig.records_after(4)
    usage = expected.usage_metadata
    tokens = (usage.prompt_token_count, usage.candidates_token_count)
    common: dict[str, Any] = {
        "provider": GEMINI,
        "operation": "generate_content",
        "model": model,
        "response_model": "gemini-2.0-flash-001",
        "tokens": tokens,
        "price": ("google", model),
    }
    await check_call(rig, whole, **common)
    await check_call(rig, streamed, first_chunk_after=PROFILES[model].ttft_s, **common)
    await check_call(
        rig,
        embedding,
        provider=GEMINI,
        operation="embeddings",
        model="gemini-embedding-001",
        response_model=None,
        tokens=(sum(count_tokens(text) for text in TEXTS), None),
        price=("google", "gemini-embedding-001"),
    )
    assert (counting.request.operation, counting.provider_name) == ("other", GEMINI)
    labels = {"gen_ai_provider_name": GEMINI, "upstream": "gemini"}
    requests = "model_sidecar_requests_total"
    assert await rig.series(requests, gen_ai_operation_name="generate_content", **labels) == 2
    assert await rig.series(requests, gen_ai_operation_name="embeddings", **labels) == 1
    await rig.assert_no_credentials()


async def test_stream_bytes_are_unchanged(rig: Rig, simulator: RunningSimulator) -> None:
    # The exact request google-genai sends, replayed directly and through the sidecar.
    path = "/v1/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    body = {"contents": [{"parts": [{"text": PROMPT}], "role": "user"}]}
    headers = {"x-goog-api-key": API_KEY}
    raw = []
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        for base in (simulator.url, rig.url):
            async with http.post(base + path, json=body, headers=headers) as response:
                assert response.status == 200
                raw.append(await response.read())
    assert raw[0] == raw[1] and raw[0].count(b"data: ") > 2
    (record,) = await rig.records_after(1)
    assert record.outcome == "ok" and record.first_chunk is not None
