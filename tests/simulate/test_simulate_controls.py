"""Determinism, per-request header controls, queued faults, and what tests can observe."""

from __future__ import annotations

import asyncio
import gzip
import time
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from sidecar.protocols.sse import SSEDecoder
from sidecar.simulate.profiles import ModelProfile
from sidecar.simulate.simulator import RunningSimulator, Simulator, start_simulator

MESSAGES = [{"role": "user", "content": "Say something about sidecars."}]
NO_DELAY = {"x-sim-ttft-ms": "0", "x-sim-chunk-interval-ms": "0"}
CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES}
STREAM_CHAT = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
# Vertex AI wants an OAuth token, Azure an api-key; the other providers ignore both.
CREDENTIALS = {"Authorization": "Bearer test-token", "api-key": "azure-key"}
VERTEX = "/v1/projects/p/locations/us-central1/publishers/"
GEMINI = {"contents": [{"parts": [{"text": "hi"}]}]}
CLAUDE = {
    "anthropic_version": "vertex-2023-10-16",
    "max_tokens": 50,
    "messages": MESSAGES,
    "stream": True,
}


async def raw(
    http: aiohttp.ClientSession, target: str, body: dict[str, Any], **headers: str
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    async with http.post(target, json=body, headers=headers) as response:
        return response.status, response.headers, await response.read()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", CHAT),
        ("/v1/chat/completions", STREAM_CHAT),
        ("/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "stream": True}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "hi"}),
        ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi", "stream": True}),
        ("/v1/messages", {"model": "claude-sonnet-4", "max_tokens": 50, "messages": MESSAGES}),
        (
            "/v1/messages",
            {"model": "claude-sonnet-4", "max_tokens": 50, "messages": MESSAGES, "stream": True},
        ),
        (
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            {"contents": [{"parts": [{"text": "hi"}]}]},
        ),
        (
            "/v1/models/gemini-2.0-flash:streamGenerateContent",
            {"contents": [{"parts": [{"text": "hi"}]}]},
        ),
        (VERTEX + "google/models/gemini-2.5-flash:generateContent", GEMINI),
        (VERTEX + "anthropic/models/claude-sonnet-4@20250514:streamRawPredict", CLAUDE),
        ("/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21", STREAM_CHAT),
        ("/openai/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}),
        ("/api/chat", {"model": "llama3.2", "messages": MESSAGES}),
        ("/api/generate", {"model": "llama3.2", "prompt": "hi", "stream": False}),
        ("/api/embed", {"model": "nomic-embed-text", "input": ["hi", "there"]}),
    ],
)
async def test_same_request_gets_the_same_bytes(
    sim: RunningSimulator, http: aiohttp.ClientSession, path: str, body: dict[str, Any]
) -> None:
    first = await raw(http, sim.base_url + path, body, **NO_DELAY, **CREDENTIALS)
    second = await raw(http, sim.base_url + path, body, **NO_DELAY, **CREDENTIALS)
    assert first[0] == 200
    assert first[2] == second[2]
    # Another simulator (another process, another seed) answers the same bytes too.
    other = await start_simulator(Simulator(seed=99))
    try:
        third = await raw(http, other.base_url + path, body, **NO_DELAY, **CREDENTIALS)
    finally:
        await other.close()
    assert third[2] == first[2]


async def test_asking_for_stream_usage_changes_nothing_but_the_usage(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    # A proxy may add include_usage upstream and strip the usage chunk: ids and text must match.
    target = sim.openai_base_url + "/chat/completions"
    plain = (await raw(http, target, {**CHAT, "stream": True}, **NO_DELAY))[2]
    with_usage = (await raw(http, target, STREAM_CHAT, **NO_DELAY))[2]
    stripped = [
        {k: v for k, v in orjson.loads(data).items() if k != "usage"}
        for _, data in SSEDecoder().feed(with_usage)
        if data != b"[DONE]"
    ]
    assert stripped[:-1] == [
        orjson.loads(data) for _, data in SSEDecoder().feed(plain) if data != b"[DONE]"
    ]


async def test_different_requests_get_different_ids_and_text(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    target = sim.openai_base_url + "/chat/completions"
    one = orjson.loads((await raw(http, target, CHAT))[2])
    other_messages = [{"role": "user", "content": "Something else."}]
    two = orjson.loads((await raw(http, target, {**CHAT, "messages": other_messages}))[2])
    assert one["id"] != two["id"]
    assert one["choices"][0]["message"]["content"] != two["choices"][0]["message"]["content"]


async def test_nondeterministic_profile_diverges_at_temperature_zero(openai_client: Any) -> None:
    async def texts(model: str) -> set[str]:
        replies = [
            await openai_client.chat.completions.create(
                model=model, messages=MESSAGES, temperature=0, extra_headers=NO_DELAY
            )
            for _ in range(8)
        ]
        return {reply.choices[0].message.content for reply in replies}

    assert len(await texts("gpt-4o-mini")) == 1
    assert len(await texts("gpt-4o")) > 1


async def test_drop_after_chunks_makes_the_openai_sdk_raise(
    openai_client: Any, sim: RunningSimulator
) -> None:
    stream = await openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-sim-drop-after-chunks": "3"},
    )
    pieces: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            pieces.append(chunk.choices[0].delta.content)
    assert pieces[0] == ""  # the role chunk
    assert len([p for p in pieces[1:] if p]) == 3


async def test_drop_after_chunks_makes_the_anthropic_sdk_raise(
    anthropic_client: Any, sim: RunningSimulator
) -> None:
    sim.simulator.drop_next(1, after_chunks=2, model="claude-sonnet-4")
    texts: list[str] = []
    # The anthropic SDK lets the transport's error through unwrapped.
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
        async with anthropic_client.messages.stream(
            model="claude-sonnet-4", max_tokens=100, messages=MESSAGES
        ) as stream:
            async for text in stream.text_stream:
                texts.append(text)
    assert len(texts) == 2
    # The fault was used up: the next stream completes.
    async with anthropic_client.messages.stream(
        model="claude-sonnet-4", max_tokens=100, messages=MESSAGES
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "end_turn"


async def test_dropped_stream_has_no_chunked_terminator(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    target = sim.openai_base_url + "/chat/completions"
    with pytest.raises(aiohttp.ClientPayloadError):
        await raw(http, target, STREAM_CHAT, **{"x-sim-drop-after-chunks": "0"})
    # A non-streamed body is cut short of its Content-Length.
    with pytest.raises(aiohttp.ClientPayloadError):
        await raw(http, target, CHAT, **{"x-sim-drop-after-chunks": "1"})


async def test_gzip_whole_and_streamed(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    target = sim.openai_base_url + "/chat/completions"
    plain = await raw(http, target, CHAT)
    zipped = await raw(http, target, CHAT, **{"x-sim-gzip": "1", "Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain[1]
    assert zipped[1]["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped[2]) == plain[2]
    # Without Accept-Encoding: gzip the body stays plain.
    refused = await raw(http, target, CHAT, **{"x-sim-gzip": "1", "Accept-Encoding": "identity"})
    assert refused[2] == plain[2]

    headers = {"x-sim-gzip": "1", "Accept-Encoding": "gzip", "x-sim-chunk-interval-ms": "10"}
    async with http.post(target, json=STREAM_CHAT, headers=headers) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        pieces = [piece async for piece in response.content.iter_any()]
    assert len(pieces) > 10  # flushed event by event, not buffered to the end
    assert gzip.decompress(b"".join(pieces)) == (await raw(http, target, STREAM_CHAT))[2]


async def test_ndjson_stream_gzip_stall_and_drop(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    # The controls act on Ollama's NDJSON lines as on SSE events.
    target = sim.base_url + "/api/chat"
    body = {"model": "llama3.2", "messages": MESSAGES}
    plain = await raw(http, target, body, **NO_DELAY)
    zipped = await raw(
        http, target, body, **NO_DELAY, **{"x-sim-gzip": "1", "Accept-Encoding": "gzip"}
    )
    assert zipped[1]["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped[2]) == plain[2]
    sim.simulator.stall_next(1, mid_stream_s=0.3, model="llama3.2")
    async with http.post(target, json=body, headers=NO_DELAY) as response:
        await response.content.readline()
        started = time.monotonic()
        await response.content.readline()
        assert time.monotonic() - started >= 0.3 * 0.9
        await response.read()
    with pytest.raises(aiohttp.ClientPayloadError):
        await raw(http, target, body, **{"x-sim-drop-after-chunks": "2"})


async def test_sdk_reads_a_gzipped_stream(openai_client: Any) -> None:
    stream = await openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-sim-gzip": "1", "Accept-Encoding": "gzip"},
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert len(text.split()) == 24


async def test_chunk_count_ttft_and_interval_headers(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    target = sim.openai_base_url + "/chat/completions"
    headers = {"x-sim-chunks": "5", "x-sim-ttft-ms": "200", "x-sim-chunk-interval-ms": "50"}
    started = time.monotonic()
    arrivals: list[float] = []
    async with http.post(target, json={**CHAT, "stream": True}, headers=headers) as response:
        headers_at = time.monotonic() - started
        decoder = SSEDecoder()
        async for piece in response.content.iter_any():
            for _, data in decoder.feed(piece):
                if b'"content":"' in data and b'"content":""' not in data:
                    arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 5
    assert arrivals[0] >= 0.2
    assert headers_at < arrivals[0] - 0.1  # headers go out at once, output after the TTFT
    assert arrivals[-1] - arrivals[0] >= 4 * 0.05 * 0.9


async def test_non_stream_waits_for_the_whole_generation(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    headers = {"x-sim-chunks": "4", "x-sim-ttft-ms": "100", "x-sim-chunk-interval-ms": "50"}
    started = time.monotonic()
    status, _, body = await raw(http, sim.openai_base_url + "/chat/completions", CHAT, **headers)
    assert status == 200
    assert time.monotonic() - started >= 0.25 * 0.9
    assert orjson.loads(body)["usage"]["completion_tokens"] == 4


async def test_stall_before_headers_and_mid_stream(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    target = sim.openai_base_url + "/chat/completions"
    started = time.monotonic()
    stall = {"x-sim-stall-before-headers-ms": "300", "x-sim-ttft-ms": "0"}
    async with http.post(target, json={**CHAT, "stream": True}, headers=stall) as response:
        assert time.monotonic() - started >= 0.3 * 0.9
        await response.read()

    sim.simulator.stall_next(1, mid_stream_s=0.3)
    started = time.monotonic()
    async with http.post(target, json={**CHAT, "stream": True}) as response:
        first = await response.content.readuntil(b"\n\n")  # role chunk
        first = await response.content.readuntil(b"\n\n")  # first text chunk
        second_started = time.monotonic()
        await response.content.readuntil(b"\n\n")
        gap = time.monotonic() - second_started
    assert b'"content":"' in first
    assert gap >= 0.3 * 0.9


async def test_status_header_and_queued_failures(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    target = sim.openai_base_url + "/chat/completions"
    status, headers, body = await raw(
        http, target, CHAT, **{"x-sim-status": "503", "x-sim-retry-after": "7"}
    )
    assert status == 503
    assert headers["retry-after"] == "7"
    assert orjson.loads(body)["error"]["type"] == "server_error"

    sim.simulator.fail_next(2, 500)
    statuses = [(await raw(http, target, CHAT))[0] for _ in range(3)]
    assert statuses == [500, 500, 200]

    # Faults for one model leave other models alone.
    sim.simulator.fail_next(1, 429, model="gpt-4o")
    assert (await raw(http, target, CHAT))[0] == 200
    assert (await raw(http, target, {**CHAT, "model": "gpt-4o"}))[0] == 429


async def test_faults_endpoint(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    faults = sim.base_url + "/_sim/faults"
    async with http.post(faults, json=[{"count": 2, "status": 503}]) as response:
        assert await response.json() == {"queued": 1}
    target = sim.base_url + "/v1/messages"
    body = {"model": "claude-sonnet-4", "max_tokens": 5, "messages": MESSAGES}
    statuses = [(await raw(http, target, body))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]

    async with http.post(faults, json={"count": 1, "drop_after_chunks": 1}) as response:
        assert response.status == 200
    async with http.delete(faults) as response:
        assert await response.json() == {"queued": 0}
    assert (await raw(http, target, {**body, "stream": True}))[0] == 200

    async with http.post(faults, json={"count": 0, "status": 503}) as response:
        assert response.status == 400
    async with http.post(faults, json={"count": 1, "status": "503"}) as response:
        assert response.status == 400
    async with http.post(faults, json={"colour": "red"}) as response:
        assert response.status == 400
        assert "colour" in (await response.json())["error"]


async def test_random_faults_are_reproducible_per_seed(http: aiohttp.ClientSession) -> None:
    async def statuses(seed: int) -> list[int]:
        running = await start_simulator(Simulator(seed=seed))
        try:
            body = {**CHAT, "model": "gpt-4.1-nano"}
            target = running.openai_base_url + "/chat/completions"
            return [(await raw(http, target, body, **NO_DELAY))[0] for _ in range(40)]
        finally:
            await running.close()

    first = await statuses(3)
    assert first == await statuses(3)
    assert 429 in first
    assert first.count(200) > 20
    assert first != await statuses(4)


async def test_received_requests_are_recorded(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    target = sim.base_url + "/v1beta/models/gemini-2.0-flash:generateContent?key=abc"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    await raw(http, target, body, **{"x-custom": "yes"})
    seen = sim.simulator.received[-1]
    assert seen.method == "POST"
    assert seen.path_qs == "/v1beta/models/gemini-2.0-flash:generateContent?key=abc"
    assert seen.headers["x-custom"] == "yes"
    assert orjson.loads(seen.body) == body
    assert seen.peer == "127.0.0.1"


async def test_unknown_model_gets_the_fallback_profile(openai_client: Any) -> None:
    reply = await openai_client.chat.completions.create(model="my-local-llm", messages=MESSAGES)
    assert reply.model == "my-local-llm"
    assert reply.usage.completion_tokens == 24


async def test_custom_profiles_and_fastest_mode(http: aiohttp.ClientSession) -> None:
    slow = ModelProfile(name="slow-model", ttft_s=5.0, tokens_per_second=1.0, output_tokens=7)
    running = await start_simulator(Simulator([slow], fastest=True))
    try:
        started = time.monotonic()
        status, _, body = await raw(
            http,
            running.openai_base_url + "/chat/completions",
            {**STREAM_CHAT, "model": "slow-model"},
        )
        elapsed = time.monotonic() - started
    finally:
        await running.close()
    assert status == 200
    assert elapsed < 1.0
    events = [orjson.loads(data) for _, data in SSEDecoder().feed(body) if data != b"[DONE]"]
    assert events[-1]["usage"]["completion_tokens"] == 7


async def client_disconnect_is_noticed(
    simulator: Simulator, base_url: str, headers: dict[str, str]
) -> None:
    async with aiohttp.ClientSession() as session:
        target = base_url + "/v1/chat/completions"
        async with session.post(target, json={**CHAT, "stream": True}, headers=headers) as response:
            await response.content.readuntil(b"\n\n")
            await response.content.readuntil(b"\n\n")
            closed_at = time.monotonic()
            response.close()
    event = await simulator.wait_for_disconnect(timeout=2.0, since=closed_at - 0.5)
    assert event.path == "/v1/chat/completions"
    assert event.time - closed_at < 1.0


@pytest.mark.parametrize(
    "headers",
    [{"x-sim-chunk-interval-ms": "200"}, {"x-sim-stall-mid-stream-ms": "10000"}],
)
async def test_client_disconnect_is_noticed_within_a_second(
    simulator: Simulator, sim: RunningSimulator, headers: dict[str, str]
) -> None:
    await client_disconnect_is_noticed(simulator, sim.base_url, headers)


async def test_client_disconnect_is_noticed_by_a_plain_app_runner() -> None:
    # The lead's tests may serve build_app() with a default AppRunner (no handler cancellation).
    simulator = Simulator()
    runner = web.AppRunner(simulator.build_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        await client_disconnect_is_noticed(
            simulator, base_url, {"x-sim-stall-mid-stream-ms": "10000"}
        )
    finally:
        await runner.cleanup()


async def test_concurrent_streams_do_not_block_each_other(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    target = sim.openai_base_url + "/chat/completions"
    headers = {"x-sim-chunks": "5", "x-sim-chunk-interval-ms": "40", "x-sim-ttft-ms": "0"}
    started = time.monotonic()
    results = await asyncio.gather(
        *(raw(http, target, {**STREAM_CHAT, "n": 1}, **headers) for _ in range(10))
    )
    assert all(status == 200 for status, _, _ in results)
    assert time.monotonic() - started < 1.8  # >= 10 x 0.2 s if served one after another


async def test_status_header_outside_the_error_range_is_ignored(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, _, _ = await raw(
        http, sim.openai_base_url + "/chat/completions", CHAT, **{"x-sim-status": "200"}
    )
    assert status == 200
