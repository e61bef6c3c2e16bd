"""Ollama's native API end to end with the official ollama client: chat, generate, streams
(NDJSON), embed; and an NDJSON stream cut mid-line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import ollama
import pytest
from aiohttp import web

from sidecar.simulate.profiles import default_profiles
from sidecar.simulate.text import count_tokens
from tests.helpers.providers import MESSAGES, PROMPT, Clients, Rig, check_call
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

PROFILES = default_profiles()
MODEL = "llama3.2"


async def test_chat_generate_streams_and_embed(
    rig: Rig, clients: Clients, simulator: RunningSimulator
) -> None:
    direct, proxied = clients.ollama(simulator.url), clients.ollama(rig.url)
    expected = await direct.chat(model=MODEL, messages=MESSAGES, stream=False)
    reply = await proxied.chat(model=MODEL, messages=MESSAGES, stream=False)
    assert reply.model_dump() == expected.model_dump()
    parts = [p async for p in await proxied.chat(model=MODEL, messages=MESSAGES, stream=True)]
    direct_parts = [p async for p in await direct.chat(model=MODEL, messages=MESSAGES, stream=True)]
    assert [p.model_dump() for p in parts] == [p.model_dump() for p in direct_parts]
    generated = [p async for p in await proxied.generate(model=MODEL, prompt=PROMPT, stream=True)]
    embedded = await proxied.embed(model=MODEL, input=["first", "second"])
    assert simulator.sim.received[-1].path_qs == "/api/embed"

    whole, streamed, generation, embedding = await rig.records_after(4)
    tokens = (expected.prompt_eval_count, expected.eval_count)
    common: dict[str, Any] = {
        "provider": "ollama",
        "model": MODEL,
        "response_model": MODEL,
        "price": None,  # a local model has no price
    }
    await check_call(rig, whole, operation="chat", tokens=tokens, **common)
    ttft = PROFILES[MODEL].ttft_s
    await check_call(
        rig, streamed, operation="chat", tokens=tokens, first_chunk_after=ttft, **common
    )
    assert streamed.finish_reasons == ["stop"] and len(streamed.chunk_times) == len(parts) - 1
    final = generated[-1]
    await check_call(
        rig,
        generation,
        operation="text_completion",
        tokens=(final.prompt_eval_count, final.eval_count),
        first_chunk_after=ttft,
        **common,
    )
    await check_call(
        rig,
        embedding,
        operation="embeddings",
        tokens=(embedded.prompt_eval_count, None),
        **common,
    )
    assert embedded.prompt_eval_count == count_tokens("first") + count_tokens("second")
    labels = {"gen_ai_provider_name": "ollama", "upstream": "ollama"}
    assert await rig.series("model_sidecar_requests_total", **labels) == 4
    assert await rig.series("model_sidecar_cost_unknown_total", **labels) == 4
    await rig.assert_no_credentials()


async def test_stream_bytes_are_unchanged(rig: Rig, simulator: RunningSimulator) -> None:
    body = {"model": MODEL, "messages": MESSAGES}
    raw = []
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        for base in (simulator.url, rig.url):
            async with http.post(base + "/api/chat", json=body) as response:
                assert response.headers["Content-Type"] == "application/x-ndjson"
                raw.append(await response.read())
    assert raw[0] == raw[1] and raw[0].count(b"\n") == 25


@pytest.fixture
async def cut_upstream() -> AsyncIterator[str]:
    """An Ollama that dies in the middle of its second NDJSON line."""

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await response.write(
            b'{"model":"llama3.2","message":{"role":"assistant","content":"Hi"},"done":false}\n'
        )
        await response.write(b'{"model":"llama3.2","message":{"con')
        assert request.transport is not None
        request.transport.close()
        return response

    app = web.Application()
    app.router.add_post("/api/chat", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_a_stream_cut_mid_line_is_forwarded_and_recorded_as_an_error(
    cut_upstream: str, sidecar_factory: SidecarFactory, records: Any
) -> None:
    sidecar = await sidecar_factory({"upstreams": {"ollama": {"url": cut_upstream}}})
    received = b""
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.proxy_url + "/api/chat", json={"model": MODEL}) as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                async for data in response.content.iter_any():
                    received += data
    assert received == (
        b'{"model":"llama3.2","message":{"role":"assistant","content":"Hi"},"done":false}\n'
        b'{"model":"llama3.2","message":{"con'
    )
    (record,) = await records.wait_for(1)
    assert (record.outcome, record.error_type) == ("stream_interrupted", "stream_interrupted")
    assert record.first_chunk is not None and record.input_tokens is None
    # The official client sees the broken transfer as an error, never as a clean end.
    texts = []
    with pytest.raises(httpx.HTTPError):
        async with ollama.AsyncClient(host=sidecar.proxy_url) as client:
            async for part in await client.chat(model=MODEL, messages=MESSAGES, stream=True):
                texts.append(part.message.content)
    assert texts == ["Hi"]
    assert [r.outcome for r in await records.wait_for(2)] == ["stream_interrupted"] * 2
