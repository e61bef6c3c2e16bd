"""A WebSocket handshake on the proxy listener: it reaches the handler as an upgrade request,
which may take the connection over (raw bytes both ways, from the first byte after the
request's head) or answer it like any request (the connection then closes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from sidecar.http1.listener import IncomingRequest, ProxyServer, Responder
from sidecar.http1.responder import RawChannel

HANDSHAKE = (
    b"GET /v1/realtime?model=m HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
SWITCHED = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


class Echo:
    """A taken-over connection's new protocol: echoes every byte, notes the end."""

    def __init__(self) -> None:
        self.channel: RawChannel | None = None
        self.received = bytearray()
        self.ended: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.channel is not None:
            self.channel.write(data.upper())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended.done():
            self.ended.set_result(exc)

    def pause_writing(self) -> None:
        return None

    def resume_writing(self) -> None:
        return None


class Upgrader:
    """A handler that takes every upgrade over with an Echo until the app leaves."""

    def __init__(self) -> None:
        self.requests: list[IncomingRequest] = []
        self.echo: Echo | None = None
        self.finished = asyncio.Event()

    async def __call__(self, request: IncomingRequest, responder: Responder) -> None:
        self.requests.append(request)
        if not request.upgrade:
            responder.send(200, "", [], b"plain")
            return
        echo = self.echo = Echo()
        # What the app sent before the switch reaches the echo first, then later bytes.
        echo.channel = responder.switch_protocols(SWITCHED + b"first bytes", echo)
        echo.channel.write(b"<" + bytes(echo.received) + b">")
        try:
            await echo.ended
        finally:
            self.finished.set()


@contextlib.asynccontextmanager
async def serving(handler: Upgrader) -> AsyncIterator[tuple[ProxyServer, str, int]]:
    server = ProxyServer(handler, max_body_bytes=1000, client_timeout=5.0)
    await server.start("127.0.0.1", 0)
    host, port = server.addresses[0]
    try:
        yield server, host, port
    finally:
        await server.shutdown(0.5)


async def test_the_handler_takes_the_connection_over() -> None:
    handler = Upgrader()
    async with serving(handler) as (server, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(HANDSHAKE + b"early")  # bytes right behind the head are not lost
        head = await reader.readuntil(b"\r\n\r\n")
        assert head == SWITCHED
        assert await reader.readexactly(len(b"first bytes<early>")) == b"first bytes<early>"
        writer.write(b"later")
        assert await reader.readexactly(5) == b"LATER"
        (request,) = handler.requests
        assert (request.upgrade, request.keep_alive, request.method) == (True, False, "GET")
        assert request.target == "/v1/realtime?model=m"
        assert server.in_flight == 1  # the session runs in its handler
        writer.close()
        async with asyncio.timeout(2):
            await handler.finished.wait()
        assert handler.echo is not None and bytes(handler.echo.received) == b"earlylater"
        async with asyncio.timeout(2):
            while server.in_flight:
                await asyncio.sleep(0.01)


async def test_an_upgrade_answered_like_a_request_closes_the_connection() -> None:
    async def refuse(request: IncomingRequest, responder: Responder) -> None:
        assert request.upgrade
        responder.send(403, "", [("Content-Type", "text/plain")], b"no")

    server = ProxyServer(refuse, max_body_bytes=1000, client_timeout=5.0)
    await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        writer.write(HANDSHAKE + b"\x81\x80abcd")  # a frame the app sent too early
        reply = await reader.read()  # everything up to the close
        assert reply.startswith(b"HTTP/1.1 403 Forbidden\r\n")
        assert b"Connection: close\r\n" in reply and reply.endswith(b"\r\n\r\nno")
        writer.close()
    finally:
        await server.shutdown(0.5)


@pytest.mark.parametrize(
    "request_bytes",
    [
        HANDSHAKE.replace(b"Upgrade: websocket", b"Upgrade: h2c"),
        HANDSHAKE.replace(b"GET ", b"POST "),
        HANDSHAKE.replace(b"Sec-WebSocket-Version: 13\r\n", b""),
        HANDSHAKE.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\nabc"),
    ],
)
async def test_other_upgrades_are_refused_by_the_listener(request_bytes: bytes) -> None:
    handler = Upgrader()
    async with serving(handler) as (_, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request_bytes)
        reply = await reader.read()
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        writer.close()
    assert not handler.requests


async def test_shutdown_cuts_a_taken_over_connection() -> None:
    handler = Upgrader()
    server = ProxyServer(handler, max_body_bytes=1000, client_timeout=5.0)
    await server.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.addresses[0])
    writer.write(HANDSHAKE)
    await reader.readuntil(b"\r\n\r\n")
    assert await server.shutdown(0.2) == 1  # still running at the end of the grace: cut
    assert handler.finished.is_set()
    assert await reader.read() in (b"first bytes<>", b"")
    writer.close()


async def test_switching_protocols_needs_an_upgrade_request() -> None:
    seen: list[BaseException] = []

    async def misuse(request: IncomingRequest, responder: Responder) -> None:
        try:
            responder.switch_protocols(SWITCHED, Echo())
        except RuntimeError as exc:
            seen.append(exc)
            responder.send(204, "", [], b"")

    server = ProxyServer(misuse, max_body_bytes=1000, client_timeout=5.0)
    await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 204 ")
        writer.close()
    finally:
        await server.shutdown(0.5)
    assert len(seen) == 1


async def test_a_handshake_pipelined_behind_a_request_waits_its_turn() -> None:
    handler = Upgrader()
    async with serving(handler) as (_, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n" + HANDSHAKE)
        first = await reader.readuntil(b"plain")
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == SWITCHED
        assert await reader.readexactly(len(b"first bytes<>")) == b"first bytes<>"
        writer.write(b"echo")
        assert await reader.readexactly(4) == b"ECHO"
        writer.close()
    assert [request.upgrade for request in handler.requests] == [False, True]
