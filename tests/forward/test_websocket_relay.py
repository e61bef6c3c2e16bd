"""The WebSocket relay below any library: a hand-written client on one side of a real sidecar, a
raw upstream on the other, every byte compared. Frames pass exactly as they were sent —
masks, fragmentation, interleaved pings, frames no parser accepts — and either side's end
closes the other within a second."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator

import orjson
import pytest

from sidecar.app import Sidecar
from sidecar.protocols.websocket_frames import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT
from tests.helpers.metrics import scrape, total
from tests.helpers.ports import closed_port_url
from tests.helpers.realtime import RawUpstream, accept_key, frame
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY
from tests.helpers.sidecar import Sidecars

KEY = base64.b64encode(os.urandom(16)).decode()
SUBPROTOCOLS = f"realtime, openai-insecure-api-key.{API_KEY}"
SERVER_HELLO = frame(TEXT, b'{"type":"session.created","event_id":"event_1","session":{}}')
DURATION = "model_sidecar_realtime_session_duration_seconds_count"


def handshake(path: str = "/v1/realtime?model=gpt-realtime", extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: app.local\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {SUBPROTOCOLS}\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        f"Authorization: Bearer {API_KEY}\r\n{extra}\r\n"
    ).encode()


async def open_app(
    sidecar: Sidecar, request: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    host, port = sidecar.proxy_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    return reader, writer, head


@pytest.fixture
async def raw_upstream() -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream(first=SERVER_HELLO, extra_headers="Sec-WebSocket-Protocol: realtime\r\n")
    async with upstream.running():
        yield upstream


@pytest.fixture
async def relay(raw_upstream: RawUpstream) -> AsyncIterator[Sidecar]:
    sidecars = Sidecars(raw_upstream.url, [RecordingSink()])
    yield await sidecars.start()
    await sidecars.stop_all()


async def test_every_byte_passes_unchanged_both_ways(
    relay: Sidecar, raw_upstream: RawUpstream
) -> None:
    reader, writer, head = await open_app(relay, handshake())
    # The upstream's own 101: its accept key answers the app's key, its subprotocol choice.
    assert head.startswith("HTTP/1.1 101 Switching Protocols\r\n")
    assert f"Sec-WebSocket-Accept: {accept_key(KEY)}\r\n" in head
    assert "Sec-WebSocket-Protocol: realtime\r\n" in head
    assert "x-model-sidecar-request-id: " in head
    # The upstream's first frame, written with its 101, follows the head.
    assert await reader.readexactly(len(SERVER_HELLO)) == SERVER_HELLO

    session = await raw_upstream.session()
    assert session.head.startswith(b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\n")
    assert session.header("Sec-WebSocket-Key") == KEY
    assert session.header("Sec-WebSocket-Protocol") == SUBPROTOCOLS
    assert session.header("Authorization") == f"Bearer {API_KEY}"
    assert session.header("Host") == raw_upstream.url.removeprefix("http://")
    # Compression is not offered upstream: the sidecar must read the frames.
    assert session.header("Sec-WebSocket-Extensions") is None

    mask = os.urandom(4)
    audio = b'{"type":"input_audio_buffer.append","audio":"' + b"A" * 300_000 + b'"}'
    client = b"".join(
        [
            frame(TEXT, b'{"type":"response.create"}', mask=mask),
            frame(TEXT, audio[:1000], fin=False, mask=mask),  # fragmented, a ping in between
            frame(PING, b"are you there", mask=mask),
            frame(CONTINUATION, audio[1000:], mask=mask),
            frame(BINARY, bytes(range(256)), mask=mask),
            frame(TEXT, b"\xff\xfe not UTF-8, not JSON", mask=mask),
            frame(0x3, b"a reserved opcode", mask=mask),  # no parser takes this: it passes
            frame(TEXT, b'{"type":"after the bad frame"}', mask=mask),
        ]
    )
    for start in range(0, len(client), 4093):  # in pieces that cut headers and masks apart
        writer.write(client[start : start + 4093])
        await writer.drain()
    received = await session.wait_for(len(client))
    assert received == client

    server = b"".join(
        [
            frame(PONG, b"are you there"),
            frame(TEXT, b'{"type":"response.output_audio.delta","delta":"' + b"B" * 200_000 + b"}"),
            frame(TEXT, b'{"type":"response.done","response":{"id":"r"', fin=False),
            frame(CONTINUATION, b"}}"),
            frame(CLOSE, (1000).to_bytes(2, "big") + b"bye"),
        ]
    )
    session.writer.write(server)
    await session.writer.drain()
    assert await reader.readexactly(len(server)) == server

    # The upstream closes: the app's connection ends within a second.
    closed = time.monotonic()
    session.writer.close()
    async with asyncio.timeout(1.0):
        assert await reader.read() == b""
    assert time.monotonic() - closed < 1.0
    writer.close()

    async with asyncio.timeout(5):
        while total(await scrape(relay.admin_url), DURATION) < 1:
            await asyncio.sleep(0.02)
    samples = await scrape(relay.admin_url)
    # A Close frame with 1000 (the upstream's) ended it: a normal end.
    assert total(samples, DURATION, error_type="", upstream="openai") == 1
    assert total(samples, "model_sidecar_realtime_sessions") == 0


async def test_the_app_leaving_closes_the_upstream_within_a_second(
    relay: Sidecar, raw_upstream: RawUpstream
) -> None:
    reader, writer, head = await open_app(relay, handshake())
    assert head.startswith("HTTP/1.1 101 ")
    await reader.readexactly(len(SERVER_HELLO))
    session = await raw_upstream.session()
    writer.transport.abort()  # no Close frame: the app vanished
    left = time.monotonic()
    async with asyncio.timeout(1.0):
        while session.ended is None:
            await asyncio.sleep(0.005)
    assert session.ended - left < 1.0
    async with asyncio.timeout(5):
        while total(await scrape(relay.admin_url), DURATION) < 1:
            await asyncio.sleep(0.02)
    assert total(await scrape(relay.admin_url), DURATION, error_type="client_cancelled") == 1


async def test_upgrades_elsewhere_are_refused_and_nothing_is_sent(
    relay: Sidecar, raw_upstream: RawUpstream
) -> None:
    reader, writer, head = await open_app(relay, handshake("/v1/chat/completions"))
    assert head.startswith("HTTP/1.1 400 ")
    assert "Connection: close\r\n" in head
    length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
    error = orjson.loads(await reader.readexactly(length))["error"]
    assert error["message"] == (
        "model-sidecar: WebSocket upgrades are not relayed on /v1/chat/completions"
    )
    assert error["type"] == "invalid_request_error"
    assert await reader.read() == b""
    writer.close()
    assert not raw_upstream.sessions


async def test_an_unreachable_upstream_is_a_502_in_the_providers_shape() -> None:
    sidecars = Sidecars(closed_port_url(), [])
    sidecar = await sidecars.start()
    try:
        reader, writer, head = await open_app(sidecar, handshake())
        assert head.startswith("HTTP/1.1 502 ")
        length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
        body = orjson.loads(await reader.readexactly(length))
        assert body["error"]["message"] == "model-sidecar: upstream 'openai' could not be reached"
        writer.close()
        samples = await scrape(sidecar.admin_url)
        assert total(samples, DURATION, error_type="connection_error") == 1
    finally:
        await sidecars.stop_all()
