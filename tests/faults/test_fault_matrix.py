"""The fault matrix (docs/reliability.md): what the app gets, what is recorded, what comes next."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from sidecar.app import Sidecar
from sidecar.protocols.parsers import MAX_DECODE_BYTES
from tests.helpers.records import RecordingSink
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request's head and (Content-Length) body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


@pytest.fixture
async def raw_upstream() -> AsyncIterator[Callable[[Behaviour], Awaitable[str]]]:
    """Starts a TCP server whose every connection runs a given misbehaviour; yields its URL."""
    servers: list[asyncio.Server] = []

    async def start(behaviour: Behaviour) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await behaviour(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def healthy_after(sidecar: Sidecar) -> None:
    """The admin listener answers and a normal call through the simulator works."""
    async with aiohttp.ClientSession() as http:
        async with http.get(sidecar.admin_url + "/healthz") as response:
            assert response.status == 200
        async with http.post(
            sidecar.proxy_url + "/v1/messages",
            json={"model": "claude-sonnet-4", "max_tokens": 8, "messages": CHAT["messages"]},
        ) as response:
            assert response.status == 200


async def via_openai_upstream(factory: SidecarFactory, url: str, **limits: float) -> Sidecar:
    """A sidecar whose openai upstream is `url` (anthropic still goes to the simulator)."""
    overrides: dict[str, object] = {"upstreams": {"openai": {"url": url}}}
    if limits:
        overrides["limits"] = limits
    return await factory(overrides)


async def test_upstream_resets_while_reading_the_request(
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
    raw_upstream: Callable[..., Awaitable[str]],
) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(10)
        writer.transport.abort()

    sidecar = await via_openai_upstream(sidecar_factory, await raw_upstream(reset))
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.proxy_url + "/v1/chat/completions", json=CHAT) as response:
            assert response.status == 502
            assert json.loads(await response.read())["error"]["message"]
    (record,) = await records.wait_for(1)
    assert record.outcome == "connection_error"
    await healthy_after(sidecar)


async def test_malformed_sse_with_200_is_passed_through_and_marked_interrupted(
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
    raw_upstream: Callable[..., Awaitable[str]],
) -> None:
    garbage = b'data: {not json\n\ndata: {"choices": 5}\n\nevent: \xff\xfe\n\n: comment\n\ndata:'

    async def malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            + f"Content-Length: {len(garbage)}\r\n\r\n".encode()
            + garbage
        )
        await writer.drain()

    sidecar = await via_openai_upstream(sidecar_factory, await raw_upstream(malformed))
    async with aiohttp.ClientSession() as http:
        async with http.post(
            sidecar.proxy_url + "/v1/chat/completions", json={**CHAT, "stream": True}
        ) as response:
            assert response.status == 200
            assert await response.read() == garbage
    (record,) = await records.wait_for(1)
    assert record.outcome == "stream_interrupted"
    assert record.input_tokens is None and record.output_tokens is None
    await healthy_after(sidecar)


async def test_invalid_json_with_200_is_passed_through_without_usage(
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
    raw_upstream: Callable[..., Awaitable[str]],
) -> None:
    body = b'{"id": "x", "usage": {"prompt_tokens": 3, '  # cut short: not JSON

    async def invalid(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    sidecar = await via_openai_upstream(sidecar_factory, await raw_upstream(invalid))
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.proxy_url + "/v1/chat/completions", json=CHAT) as response:
            assert response.status == 200
            assert await response.read() == body
    (record,) = await records.wait_for(1)
    assert record.outcome == "ok"
    assert record.input_tokens is None
    await healthy_after(sidecar)


async def test_huge_response_is_forwarded_intact_and_usage_still_read(
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
    raw_upstream: Callable[..., Awaitable[str]],
) -> None:
    vector = "0.125," * 500 + "1"
    vectors = ",".join(
        f'{{"object":"embedding","index":{i},"embedding":[{vector}]}}' for i in range(4000)
    )
    body = (
        '{"object":"list","data":[' + vectors + '],"model":"text-embedding-3-small",'
        '"usage":{"prompt_tokens":4000,"total_tokens":4000}}'
    ).encode()
    assert len(body) > MAX_DECODE_BYTES  # too large to decode whole: head and tail are read

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            + f"Content-Length: {len(compressed)}\r\n\r\n".encode()
        )
        for start in range(0, len(compressed), 1 << 16):
            writer.write(compressed[start : start + (1 << 16)])
            await writer.drain()

    compressed = gzip.compress(body, compresslevel=1)
    sidecar = await via_openai_upstream(sidecar_factory, await raw_upstream(huge))
    async with aiohttp.ClientSession() as http:
        async with http.post(
            sidecar.proxy_url + "/v1/embeddings",
            json={"model": "text-embedding-3-small", "input": ["x"] * 4000},
            headers={"Accept-Encoding": "gzip"},
        ) as response:
            assert response.status == 200
            assert await response.read() == body
    (record,) = await records.wait_for(1)
    assert record.outcome == "ok"
    assert record.input_tokens == 4000
    assert record.response_model == "text-embedding-3-small"
    await healthy_after(sidecar)


async def test_client_leaving_before_the_response_closes_the_upstream_call(
    simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink
) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.3):
                await http.post(
                    sidecar.proxy_url + "/v1/chat/completions",
                    json=CHAT,
                    headers={"x-sim-stall-before-headers-ms": "5000"},
                )
        gone = time.monotonic()
    disconnect = await simulator.sim.wait_for_disconnect(timeout=2.0)
    assert disconnect.time - gone < 1.0
    (record,) = await records.wait_for(1)
    assert record.outcome == "client_cancelled"
    await healthy_after(sidecar)


async def test_slow_body_is_cut_off_by_the_client_read_timeout(
    simulator: RunningSimulator, sidecar_factory: SidecarFactory, records: RecordingSink
) -> None:
    sidecar = await sidecar_factory({"limits": {"client_read_timeout_seconds": 0.5}})
    host, port = sidecar.proxy_url.removeprefix("http://").rsplit(":", 1)
    before = len(simulator.sim.received)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"model":'
    )
    await writer.drain()
    started = time.monotonic()
    reply = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    assert reply.startswith(b"HTTP/1.1 408")
    assert 0.4 < time.monotonic() - started < 3
    assert len(simulator.sim.received) == before
    (record,) = await records.wait_for(1)
    assert record.outcome == "client_cancelled"
    await healthy_after(sidecar)


async def test_slow_headers_are_cut_off_by_the_header_timeout(
    sidecar_factory: SidecarFactory,
) -> None:
    sidecar = await sidecar_factory({"limits": {"client_read_timeout_seconds": 0.5}})
    host, port = sidecar.proxy_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    started = time.monotonic()
    reply = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    # The connection is closed (with or without a 408) once the timeout passed.
    assert reply == b"" or reply.startswith(b"HTTP/1.1 408")
    assert 0.4 < time.monotonic() - started < 3
    await healthy_after(sidecar)


@pytest.mark.slow
async def test_scraping_during_heavy_load_loses_nothing(
    sidecar: Sidecar, records: RecordingSink
) -> None:
    calls, scrapes = 400, 0
    statuses: list[int] = []

    async def call(http: aiohttp.ClientSession, index: int) -> None:
        body = {**CHAT, "stream": index % 2 == 0}
        async with http.post(sidecar.proxy_url + "/v1/chat/completions", json=body) as response:
            await response.read()
            statuses.append(response.status)

    async def scrape(http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        nonlocal scrapes
        while not stop.is_set():
            async with http.get(sidecar.admin_url + "/metrics") as response:
                assert response.status == 200
                await response.read()
                scrapes += 1
            await asyncio.sleep(0.02)

    stop = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
        scraper = asyncio.create_task(scrape(http, stop))
        await asyncio.gather(*(call(http, i) for i in range(calls)))
        stop.set()
        await scraper
        await records.wait_for(calls)
        async with http.get(sidecar.admin_url + "/metrics") as response:
            text = await response.text()
    assert statuses == [200] * calls
    assert scrapes >= 5
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("model_sidecar_requests_total{")
    )
    assert total == calls
