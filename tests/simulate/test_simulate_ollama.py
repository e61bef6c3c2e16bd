"""Ollama's native API as the official ollama client and the raw NDJSON wire see it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import ollama
import orjson
import pytest

from sidecar.simulate.profiles import default_profiles
from sidecar.simulate.simulator import RunningSimulator
from sidecar.simulate.text import count_tokens

PROMPT = "Explain the sidecar pattern in two sentences, please. " * 8
MESSAGES = [{"role": "user", "content": PROMPT}]
PROFILES = default_profiles()
MODEL = "llama3.2"
STATS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[Any]:
    async with ollama.AsyncClient(host=sim.base_url) as client:
        yield client


def assert_counts(final: Any, prompt_tokens: int, output_tokens: int) -> None:
    assert final.done is True
    assert final.prompt_eval_count == prompt_tokens
    assert final.eval_count == output_tokens
    durations = (final.load_duration, final.prompt_eval_duration, final.eval_duration)
    assert all(isinstance(value, int) and value > 0 for value in durations)
    assert final.total_duration > sum(durations)


async def test_chat_whole(client: Any, sim: RunningSimulator) -> None:
    reply = await client.chat(model=MODEL, messages=MESSAGES, stream=False)
    assert sim.simulator.received[-1].path_qs == "/api/chat"
    assert reply.model == MODEL
    assert reply.message.role == "assistant"
    assert len(reply.message.content.split()) == PROFILES[MODEL].output_tokens == 24
    assert reply.done_reason == "stop"
    assert_counts(reply, count_tokens(PROMPT), 24)
    # Nanoseconds from the profile's pace: TTFT for the prompt, 24 tokens at its speed.
    assert reply.prompt_eval_duration == round(PROFILES[MODEL].ttft_s * 1e9)
    assert reply.eval_duration == round(24 / PROFILES[MODEL].tokens_per_second * 1e9)


async def test_chat_stream(client: Any) -> None:
    whole = await client.chat(model=MODEL, messages=MESSAGES, stream=False)
    parts = [part async for part in await client.chat(model=MODEL, messages=MESSAGES, stream=True)]
    assert len(parts) == 25  # one token a line, then the closing line
    assert all(part.done is False for part in parts[:-1])
    assert all(part.eval_count is None for part in parts[:-1])
    assert "".join(part.message.content for part in parts) == whole.message.content
    final = parts[-1]
    assert final.message.content == ""
    assert final.done_reason == "stop"
    assert_counts(final, count_tokens(PROMPT), 24)


async def test_generate_whole_and_streamed(client: Any, sim: RunningSimulator) -> None:
    system = "Be brief."
    whole = await client.generate(model=MODEL, prompt=PROMPT, system=system)
    assert sim.simulator.received[-1].path_qs == "/api/generate"
    prompt_tokens = count_tokens(system) + count_tokens(PROMPT)
    assert_counts(whole, prompt_tokens, 24)
    assert whole.done_reason == "stop"
    assert len(whole.context) == prompt_tokens + 24
    stream = await client.generate(model=MODEL, prompt=PROMPT, system=system, stream=True)
    parts = [part async for part in stream]
    assert "".join(part.response for part in parts) == whole.response
    assert parts[-1].context == whole.context
    assert_counts(parts[-1], prompt_tokens, 24)


async def test_num_predict_cuts_the_answer(client: Any) -> None:
    reply = await client.generate(model=MODEL, prompt=PROMPT, options={"num_predict": 5})
    assert reply.done_reason == "length"
    assert reply.eval_count == 5
    assert len(reply.response.split()) == 5


async def test_empty_prompt_only_loads_the_model(client: Any) -> None:
    reply = await client.generate(model=MODEL)
    assert reply.done is True
    assert reply.done_reason == "load"
    assert reply.response == ""


async def test_logprobs(client: Any) -> None:
    reply = await client.chat(
        model=MODEL, messages=MESSAGES, stream=False, logprobs=True, top_logprobs=2
    )
    entries = reply.logprobs
    assert "".join(entry.token for entry in entries) == reply.message.content
    assert all(len(entry.top_logprobs) == 2 for entry in entries)
    assert all(entry.top_logprobs[0].token == entry.token for entry in entries)


async def test_embed(client: Any, sim: RunningSimulator) -> None:
    texts = ["first text", "a second, longer text"]
    reply = await client.embed(model="nomic-embed-text", input=texts)
    assert sim.simulator.received[-1].path_qs == "/api/embed"
    assert [len(vector) for vector in reply.embeddings] == [768, 768]
    assert reply.embeddings[0] != reply.embeddings[1]
    assert reply.prompt_eval_count == sum(count_tokens(text) for text in texts)
    one = await client.embed(model="nomic-embed-text", input="first text", dimensions=768)
    assert one.embeddings[0] == reply.embeddings[0]
    legacy = await client.embeddings(model="nomic-embed-text", prompt="first text")
    assert list(legacy.embedding) == reply.embeddings[0]


async def test_list_and_show(client: Any) -> None:
    listed = await client.list()
    assert "llama3.2:latest" in [model.model for model in listed.models]
    shown = await client.show(MODEL)
    assert shown.capabilities == ["completion"]
    assert (await client.show("nomic-embed-text")).capabilities == ["embedding"]


async def test_ndjson_framing_on_the_wire(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    body = {"model": MODEL, "messages": MESSAGES}  # streams by default
    async with http.post(sim.base_url + "/api/chat", json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/x-ndjson"
        pieces = [piece async for piece in response.content.iter_any()]
    raw = b"".join(pieces)
    assert len(pieces) > 3  # sent as it is generated, not at once
    assert raw.endswith(b"}\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == 25
    objects = [orjson.loads(line) for line in lines]
    assert list(objects[0]) == ["model", "created_at", "message", "done"]
    final = objects[-1]
    assert list(final) == [
        "model",
        "created_at",
        "message",
        "done_reason",
        "done",
        *STATS,
    ]
    # Stamps advance with the stream, as Go writes them.
    assert objects[0]["created_at"] < final["created_at"]
    assert final["created_at"].endswith("Z")

    async with http.post(
        sim.base_url + "/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False}
    ) as response:
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        whole = orjson.loads(await response.read())
    assert whole["done"] is True
    assert list(whole)[:5] == ["model", "created_at", "response", "done", "done_reason"]
    assert set(STATS) <= set(whole)


async def test_errors_and_faults(
    client: Any, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sim.simulator.fail_next(1, 503, model=MODEL)
    with pytest.raises(ollama.ResponseError) as caught:
        await client.chat(model=MODEL, messages=MESSAGES, stream=False)
    assert caught.value.status_code == 503
    assert caught.value.error.startswith("server busy")
    async with http.post(sim.base_url + "/api/chat", json={"messages": MESSAGES}) as response:
        assert response.status == 400
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert set(orjson.loads(await response.read())) == {"error"}
    sim.simulator.drop_next(1, after_chunks=4, model=MODEL)
    parts: list[Any] = []
    with pytest.raises(httpx.HTTPError):
        async for part in await client.chat(model=MODEL, messages=MESSAGES, stream=True):
            parts.append(part)
    assert len(parts) == 4
