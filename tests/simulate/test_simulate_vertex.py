"""Vertex AI through google-genai (Vertex mode) and anthropic's AnthropicVertex client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest

from sidecar.simulate.profiles import default_profiles
from sidecar.simulate.simulator import CREATED, RunningSimulator
from sidecar.simulate.text import count_tokens

PROMPT = "Explain the sidecar pattern in two sentences, please. " * 8
MESSAGES = [{"role": "user", "content": PROMPT}]
PROFILES = default_profiles()
CLAUDE = "claude-sonnet-4@20250514"
PREFIX = "/projects/p/locations/us-central1/publishers/google/models/"


@pytest.fixture(params=["v1", None])
def version(request: pytest.FixtureRequest) -> str | None:
    """The API version asked for; None = google-genai's default for Vertex (v1beta1)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def vertex_genai(version: str | None, sim: RunningSimulator) -> AsyncIterator[Any]:
    import google.oauth2.credentials
    from google import genai
    from google.genai import types

    options = types.HttpOptions(base_url=sim.base_url, api_version=version)
    client = genai.Client(
        vertexai=True,
        project="p",
        location="us-central1",
        credentials=google.oauth2.credentials.Credentials(token="test-token"),
        http_options=options,
    )
    yield client
    await client.aio.aclose()


@pytest.fixture
async def claude(sim: RunningSimulator) -> AsyncIterator[Any]:
    client = anthropic.AsyncAnthropicVertex(
        region="us-east5",
        project_id="p",
        access_token="test-token",
        base_url=sim.base_url + "/v1",
        max_retries=0,
    )
    yield client
    await client.close()


def path_of(version: str | None, model: str, method: str) -> str:
    return f"/{version or 'v1beta1'}{PREFIX}{model}:{method}"


async def test_gemini_generate_content(
    vertex_genai: Any, sim: RunningSimulator, version: str | None
) -> None:
    reply = await vertex_genai.aio.models.generate_content(
        model="gemini-2.5-flash", contents=PROMPT
    )
    received = sim.simulator.received[-1]
    assert received.path_qs == path_of(version, "gemini-2.5-flash", "generateContent")
    assert received.headers["Authorization"] == "Bearer test-token"
    profile = PROFILES["gemini-2.5-flash"]
    usage = reply.usage_metadata
    assert usage.prompt_token_count == count_tokens(PROMPT)
    assert usage.candidates_token_count == profile.output_tokens
    assert usage.thoughts_token_count == profile.reasoning_tokens
    assert usage.total_token_count == count_tokens(PROMPT) + profile.output_tokens + 48
    assert usage.traffic_type.value == "ON_DEMAND"
    assert reply.create_time == datetime.fromtimestamp(CREATED, UTC)
    assert reply.model_version == "gemini-2.5-flash"
    assert reply.response_id


async def test_gemini_stream(vertex_genai: Any, sim: RunningSimulator, version: str | None) -> None:
    whole = await vertex_genai.aio.models.generate_content(
        model="gemini-2.0-flash", contents=PROMPT
    )
    stream = await vertex_genai.aio.models.generate_content_stream(
        model="gemini-2.0-flash", contents=PROMPT
    )
    chunks = [chunk async for chunk in stream]
    path = sim.simulator.received[-1].path_qs
    assert path == path_of(version, "gemini-2.0-flash", "streamGenerateContent") + "?alt=sse"
    assert "".join(chunk.text for chunk in chunks) == whole.text
    last = chunks[-1].usage_metadata
    assert last.candidates_token_count == 24
    assert last.total_token_count == count_tokens(PROMPT) + 24
    assert all(chunk.create_time == whole.create_time for chunk in chunks)


async def test_gemini_embeddings_by_method(
    vertex_genai: Any, sim: RunningSimulator, version: str | None
) -> None:
    one = await vertex_genai.aio.models.embed_content(
        model="gemini-embedding-001", contents="first text"
    )
    assert sim.simulator.received[-1].path_qs == path_of(
        version, "gemini-embedding-001", "embedContent"
    )
    assert len(one.embeddings[0].values) == 768
    assert one.embeddings[0].statistics.token_count == count_tokens("first text")
    several = await vertex_genai.aio.models.embed_content(
        model="gemini-embedding-001", contents=["first text", "second text"]
    )
    assert sim.simulator.received[-1].path_qs == path_of(
        version, "gemini-embedding-001", "batchEmbedContents"
    )
    assert several.embeddings[0].values == one.embeddings[0].values
    assert len(several.embeddings) == 2
    # Vertex's text-embedding models answer `predict` with statistics per input.
    texts = ["first text", "a much longer second text"]
    predicted = await vertex_genai.aio.models.embed_content(
        model="text-embedding-005", contents=texts
    )
    assert sim.simulator.received[-1].path_qs == path_of(version, "text-embedding-005", "predict")
    assert [e.statistics.token_count for e in predicted.embeddings] == [
        count_tokens(text) for text in texts
    ]
    assert predicted.embeddings[0].values == one.embeddings[0].values
    characters = sum(len(text.replace(" ", "")) for text in texts)
    assert predicted.metadata.billable_character_count == characters


async def test_gemini_count_tokens(
    vertex_genai: Any, sim: RunningSimulator, version: str | None, http: aiohttp.ClientSession
) -> None:
    counted = await vertex_genai.aio.models.count_tokens(model="gemini-2.0-flash", contents=PROMPT)
    assert counted.total_tokens == count_tokens(PROMPT)
    received = sim.simulator.received[-1]
    assert received.path_qs == path_of(version, "gemini-2.0-flash", "countTokens")
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    target = sim.base_url + received.path_qs
    async with http.post(target, data=received.body, headers=headers) as response:
        raw = await response.json()
    assert raw["totalBillableCharacters"] == len(PROMPT.replace(" ", ""))


async def test_claude_create(claude: Any, sim: RunningSimulator) -> None:
    message = await claude.messages.create(model=CLAUDE, max_tokens=100, messages=MESSAGES)
    received = sim.simulator.received[-1]
    assert received.path_qs == (
        f"/v1/projects/p/locations/us-east5/publishers/anthropic/models/{CLAUDE}:rawPredict"
    )
    body = orjson.loads(received.body)
    assert "model" not in body
    assert isinstance(body["anthropic_version"], str)
    assert body["anthropic_version"]
    assert message.model == CLAUDE
    profile = PROFILES[CLAUDE]
    usage = message.usage
    prompt = count_tokens(PROMPT)
    assert usage.cache_read_input_tokens == int(prompt * profile.cache_read_share) > 0
    assert usage.input_tokens + usage.cache_read_input_tokens == prompt
    assert usage.output_tokens == profile.output_tokens == 40
    assert message.stop_reason == "end_turn"


async def test_claude_stream(claude: Any, sim: RunningSimulator) -> None:
    whole = await claude.messages.create(model=CLAUDE, max_tokens=100, messages=MESSAGES)
    async with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=MESSAGES) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert sim.simulator.received[-1].path_qs.endswith(f"/models/{CLAUDE}:streamRawPredict")
    assert "".join(texts) == whole.content[0].text
    assert final.model == CLAUDE
    assert final.usage.output_tokens == 40
    assert final.usage.input_tokens == whole.usage.input_tokens
    counted = await claude.messages.count_tokens(model=CLAUDE, messages=MESSAGES)
    assert counted.input_tokens == count_tokens(PROMPT)
    assert sim.simulator.received[-1].path_qs.endswith("/models/count-tokens:rawPredict")


async def test_claude_errors_in_both_shapes(claude: Any, sim: RunningSimulator) -> None:
    # Vertex's front end answers a quota error in Google's shape ...
    sim.simulator.fail_next(1, 429, model=CLAUDE)
    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude.messages.create(model=CLAUDE, max_tokens=100, messages=MESSAGES)
    error: Any = caught.value
    assert error.body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert error.body["error"]["code"] == 429
    assert error.response.headers["Content-Type"] == "application/json; charset=UTF-8"
    # ... Claude itself in Anthropic's.
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        await claude.messages.create(
            model=CLAUDE, max_tokens=100, messages=MESSAGES, extra_headers={"x-sim-status": "529"}
        )
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    texts: list[str] = []
    with pytest.raises(anthropic.APIConnectionError):
        async with claude.messages.stream(
            model=CLAUDE,
            max_tokens=100,
            messages=MESSAGES,
            extra_headers={"x-sim-drop-after-chunks": "3"},
        ) as stream:
            async for text in stream.text_stream:
                texts.append(text)
    assert len(texts) == 3


async def test_vertex_gates(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    claude_path = f"/v1/projects/p/locations/us-east5/publishers/anthropic/models/{CLAUDE}"
    body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 10, "messages": MESSAGES}
    async with http.post(sim.base_url + claude_path + ":rawPredict", json=body) as response:
        assert response.status == 401
        assert (await response.json())["error"]["status"] == "UNAUTHENTICATED"
    bearer = {"Authorization": "Bearer t"}
    no_version = {k: v for k, v in body.items() if k != "anthropic_version"}
    target = sim.base_url + claude_path + ":rawPredict"
    async with http.post(target, json=no_version, headers=bearer) as response:
        assert response.status == 400
        error = await response.json()
    assert error["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic_version: Field required",
    }
    for path in (
        claude_path + ":predict",
        "/v1/projects/p/locations/l/publishers/meta/models/llama:rawPredict",
        "/v1beta1" + PREFIX + "gemini-2.0-flash:fly",
    ):
        async with http.post(sim.base_url + path, json=body, headers=bearer) as response:
            assert response.status == 404, path
            assert (await response.json())["error"]["status"] == "NOT_FOUND"
