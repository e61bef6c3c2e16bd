"""Gemini's REST wire format over plain HTTP and through the google-genai SDK (v1 and v1beta)."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sidecar.protocols.sse import SSEDecoder
from sidecar.simulate.profiles import default_profiles
from sidecar.simulate.simulator import RunningSimulator
from sidecar.simulate.text import count_tokens

PROMPT = "Explain the sidecar pattern in two sentences, please. " * 8
SYSTEM = "Be brief."
REQUEST: dict[str, Any] = {
    "systemInstruction": {"parts": [{"text": SYSTEM}]},
    "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
}
PROFILES = default_profiles()
PROMPT_TOKENS = count_tokens(SYSTEM) + count_tokens(PROMPT)


def url(sim: RunningSimulator, model: str, action: str) -> str:
    return f"{sim.base_url}/v1beta/models/{model}:{action}"


async def post(http: aiohttp.ClientSession, target: str, body: dict[str, Any]) -> Any:
    async with http.post(target, json=body, headers={"x-goog-api-key": "k"}) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
        return await response.json()


async def test_generate_content_usage_metadata(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    reply = await post(http, url(sim, "gemini-2.0-flash", "generateContent"), REQUEST)
    candidate = reply["candidates"][0]
    assert candidate["content"]["role"] == "model"
    assert candidate["finishReason"] == "STOP"
    assert candidate["avgLogprobs"] < 0
    assert reply["modelVersion"] == "gemini-2.0-flash-001"
    assert reply["responseId"]
    usage = reply["usageMetadata"]
    assert usage["promptTokenCount"] == PROMPT_TOKENS
    assert usage["candidatesTokenCount"] == 24
    assert usage["totalTokenCount"] == PROMPT_TOKENS + 24
    # Like Google: zero cache and thought counts are left out.
    assert "cachedContentTokenCount" not in usage
    assert "thoughtsTokenCount" not in usage


async def test_thinking_model_reports_thoughts_and_cache(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    profile = PROFILES["gemini-2.5-flash"]
    reply = await post(http, url(sim, "gemini-2.5-flash", "generateContent"), REQUEST)
    usage = reply["usageMetadata"]
    assert usage["thoughtsTokenCount"] == profile.reasoning_tokens == 48
    assert usage["cachedContentTokenCount"] == int(PROMPT_TOKENS * profile.cache_read_share)
    assert usage["totalTokenCount"] == PROMPT_TOKENS + profile.output_tokens + 48


async def test_max_output_tokens_and_logprobs(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    body = {
        **REQUEST,
        "generationConfig": {"maxOutputTokens": 6, "responseLogprobs": True, "logprobs": 2},
    }
    reply = await post(http, url(sim, "gemini-2.0-flash", "generateContent"), body)
    candidate = reply["candidates"][0]
    assert candidate["finishReason"] == "MAX_TOKENS"
    result = candidate["logprobsResult"]
    chosen = result["chosenCandidates"]
    assert len(chosen) == 6
    assert "".join(c["token"] for c in chosen) == candidate["content"]["parts"][0]["text"]
    assert all(len(top["candidates"]) == 2 for top in result["topCandidates"])
    average = sum(c["logProbability"] for c in chosen) / len(chosen)
    assert math.isclose(candidate["avgLogprobs"], average)


async def test_stream_as_sse(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    whole = await post(http, url(sim, "gemini-2.0-flash", "generateContent"), REQUEST)
    target = url(sim, "gemini-2.0-flash", "streamGenerateContent") + "?alt=sse"
    async with http.post(target, json=REQUEST) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        raw = await response.read()
    assert raw.endswith(b"\r\n\r\n")  # Google separates events with CRLF
    events = [json.loads(data) for _, data in SSEDecoder().feed(raw)]
    text = "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events)
    assert text == whole["candidates"][0]["content"]["parts"][0]["text"]
    assert len(events) == 24 // PROFILES["gemini-2.0-flash"].tokens_per_chunk
    assert "finishReason" not in events[0]["candidates"][0]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[0]["usageMetadata"] == {
        "promptTokenCount": PROMPT_TOKENS,
        "totalTokenCount": PROMPT_TOKENS,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}],
    }
    assert events[-1]["usageMetadata"] == whole["usageMetadata"]
    assert all(e["responseId"] == events[0]["responseId"] for e in events)


async def test_stream_as_json_array_in_pieces(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    target = url(sim, "gemini-2.0-flash", "streamGenerateContent")
    headers = {"x-sim-chunk-interval-ms": "20"}
    async with http.post(target, json=REQUEST, headers=headers) as response:
        assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
        pieces = [piece async for piece in response.content.iter_any()]
    assert len(pieces) >= 3
    assert pieces[0].startswith(b"[{")
    items = json.loads(b"".join(pieces))
    assert isinstance(items, list)
    assert len(items) == 6
    assert items[-1]["usageMetadata"]["candidatesTokenCount"] == 24


async def test_count_tokens_and_embed_content(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    counted = await post(http, url(sim, "gemini-2.0-flash", "countTokens"), REQUEST)
    assert counted["totalTokens"] == PROMPT_TOKENS
    nested = {"generateContentRequest": {"model": "models/gemini-2.0-flash", **REQUEST}}
    counted = await post(http, url(sim, "gemini-2.0-flash", "countTokens"), nested)
    assert counted["totalTokens"] == PROMPT_TOKENS
    body = {"content": {"parts": [{"text": "embed me"}]}}
    embedded = await post(http, url(sim, "gemini-embedding-001", "embedContent"), body)
    values = embedded["embedding"]["values"]
    assert len(values) == 768
    assert math.isclose(sum(v * v for v in values), 1.0, rel_tol=1e-4)
    small = await post(
        http, url(sim, "gemini-embedding-001", "embedContent"), {**body, "outputDimensionality": 8}
    )
    assert len(small["embedding"]["values"]) == 8


@pytest.mark.parametrize(
    ("status", "state"),
    [(429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE"), (400, "INVALID_ARGUMENT")],
)
async def test_errors_in_google_shape(
    sim: RunningSimulator, http: aiohttp.ClientSession, status: int, state: str
) -> None:
    target = url(sim, "gemini-2.0-flash", "generateContent")
    async with http.post(target, json=REQUEST, headers={"x-sim-status": str(status)}) as response:
        assert response.status == status
        error = (await response.json())["error"]
        retry_after = response.headers.get("retry-after")
    assert error["code"] == status
    assert error["status"] == state
    assert error["message"]
    assert retry_after == ("1" if status == 429 else None)


async def test_unknown_method_is_not_found(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(url(sim, "gemini-2.0-flash", "fly"), json=REQUEST) as response:
        assert response.status == 404
        assert (await response.json())["error"]["status"] == "NOT_FOUND"


# The google-genai SDK in Gemini API mode, on both API versions ----------------------------


@pytest.fixture(params=["v1", "v1beta"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def genai_client(version: str, sim: RunningSimulator) -> AsyncIterator[Any]:
    from google import genai
    from google.genai import types

    options = types.HttpOptions(base_url=sim.base_url, api_version=version)
    client = genai.Client(api_key="gemini-test-key", http_options=options)
    yield client
    await client.aio.aclose()


async def test_sdk_generate_content(genai_client: Any, sim: RunningSimulator, version: str) -> None:
    from google.genai import types

    config = types.GenerateContentConfig(system_instruction=SYSTEM)
    reply = await genai_client.aio.models.generate_content(
        model="gemini-2.5-flash", contents=PROMPT, config=config
    )
    received = sim.simulator.received[-1]
    assert received.path_qs == f"/{version}/models/gemini-2.5-flash:generateContent"
    assert received.headers["x-goog-api-key"] == "gemini-test-key"
    profile = PROFILES["gemini-2.5-flash"]
    usage = reply.usage_metadata
    assert usage.prompt_token_count == PROMPT_TOKENS
    assert usage.candidates_token_count == profile.output_tokens
    assert usage.thoughts_token_count == profile.reasoning_tokens == 48
    assert usage.total_token_count == PROMPT_TOKENS + profile.output_tokens + 48
    assert usage.cached_content_token_count == int(PROMPT_TOKENS * profile.cache_read_share)
    assert reply.model_version == "gemini-2.5-flash"
    assert reply.response_id
    assert len(reply.text.split()) == profile.output_tokens


async def test_sdk_stream_matches_whole_answer(
    genai_client: Any, sim: RunningSimulator, version: str
) -> None:
    whole = await genai_client.aio.models.generate_content(
        model="gemini-2.0-flash", contents=PROMPT
    )
    stream = await genai_client.aio.models.generate_content_stream(
        model="gemini-2.0-flash", contents=PROMPT
    )
    chunks = [chunk async for chunk in stream]
    path = sim.simulator.received[-1].path_qs
    assert path == f"/{version}/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    assert "".join(chunk.text for chunk in chunks) == whole.text
    assert len(chunks) == 24 // PROFILES["gemini-2.0-flash"].tokens_per_chunk
    assert chunks[0].usage_metadata.candidates_token_count is None
    last = chunks[-1].usage_metadata
    assert last.prompt_token_count == count_tokens(PROMPT)
    assert last.candidates_token_count == 24
    assert chunks[-1].model_version == "gemini-2.0-flash-001"


async def test_sdk_embed_content_one_and_several(
    genai_client: Any, sim: RunningSimulator, version: str
) -> None:
    from google.genai import types

    one = await genai_client.aio.models.embed_content(
        model="gemini-embedding-001", contents="first text"
    )
    # The SDK always sends the batch form, even for one input.
    path = sim.simulator.received[-1].path_qs
    assert path == f"/{version}/models/gemini-embedding-001:batchEmbedContents"
    several = await genai_client.aio.models.embed_content(
        model="gemini-embedding-001", contents=["first text", "second text", "third"]
    )
    assert len(one.embeddings) == 1
    assert [len(e.values) for e in several.embeddings] == [768, 768, 768]
    assert several.embeddings[0].values == one.embeddings[0].values  # same text, same vector
    assert several.embeddings[0].values != several.embeddings[1].values
    assert math.isclose(sum(v * v for v in several.embeddings[2].values), 1.0, rel_tol=1e-4)
    small = await genai_client.aio.models.embed_content(
        model="gemini-embedding-001",
        contents=["a", "b"],
        config=types.EmbedContentConfig(output_dimensionality=16),
    )
    assert [len(e.values) for e in small.embeddings] == [16, 16]


async def test_sdk_count_tokens(genai_client: Any, sim: RunningSimulator, version: str) -> None:
    counted = await genai_client.aio.models.count_tokens(model="gemini-2.0-flash", contents=PROMPT)
    assert counted.total_tokens == count_tokens(PROMPT)
    assert sim.simulator.received[-1].path_qs == f"/{version}/models/gemini-2.0-flash:countTokens"


async def test_batch_embed_contents_wire(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    texts = ["one text", "another, longer text"]
    body = {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]}}
            for text in texts
        ]
    }
    for version in ("v1", "v1beta"):
        target = f"{sim.base_url}/{version}/models/gemini-embedding-001:batchEmbedContents"
        reply = await post(http, target, body)
        assert [len(e["values"]) for e in reply["embeddings"]] == [768, 768]
        tokens = sum(count_tokens(text) for text in texts)
        assert reply["usageMetadata"] == {
            "promptTokenCount": tokens,
            "promptTokenDetails": [{"modality": "TEXT", "tokenCount": tokens}],
        }
    target = url(sim, "gemini-embedding-001", "batchEmbedContents")
    async with http.post(target, json={"requests": []}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["status"] == "INVALID_ARGUMENT"
