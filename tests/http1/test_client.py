"""The upstream HTTP/1.1 client against raw asyncio servers on 127.0.0.1 (real sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trustme
from multidict import CIMultiDict

from sidecar.http1.client import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamPayloadError,
    UpstreamPool,
)

Writer = asyncio.StreamWriter
Script = Callable[["Upstream", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One raw request (head + Content-Length body), None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    match = re.search(rb"(?im)^content-length: *(\d+)", head)
    return head + (await reader.readexactly(int(match[1])) if match else b"")


class Upstream:
    """A raw HTTP server running `script` per connection; records requests and connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.connections = self.open = self.max_open = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closed = asyncio.Event()

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await self.script(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # (a cancelled handler task would make asyncio.streams log an error)
        finally:
            self.open -= 1
            self.closed.set()
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def serve(*responses: bytes, close: bool = False) -> Script:
    """A keep-alive script answering each request with the next response (the last repeats)."""

    async def script(up: Upstream, reader: asyncio.StreamReader, w: Writer) -> None:
        while (request := await read_request(reader)) is not None:
            up.requests.append(request)
            w.write(responses[min(len(up.requests), len(responses)) - 1])
            await w.drain()
            if close:
                return

    return script


Start = Callable[..., Awaitable[tuple[Upstream, UpstreamPool]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    made: list[tuple[Upstream, UpstreamPool]] = []

    async def make(script: Script, **kwargs: Any) -> tuple[Upstream, UpstreamPool]:
        up = Upstream(script)
        await up.start(kwargs.pop("server_ssl", None))
        kwargs = {"tls": False, "connect_timeout": 2.0, "read_timeout": 2.0} | kwargs
        pool = UpstreamPool(kwargs.pop("host", "127.0.0.1"), up.port, **kwargs)
        made.append((up, pool))
        return up, pool

    yield make
    for up, pool in made:
        await pool.close()
        await up.stop()


async def get(pool: UpstreamPool, target: str = "/", method: str = "GET") -> bytes:
    response = await pool.request(method, target, CIMultiDict(), b"")
    try:
        return await response.read()
    finally:
        response.release()


async def test_content_length_body_reason_and_duplicate_headers(start: Start) -> None:
    head = b"HTTP/1.1 429 Too Many Requests\r\nSet-Cookie: a=1\r\nX-N: 1\r\nset-cookie: b=2\r\n"
    _, pool = await start(serve(head + b"Content-Length: 5\r\n\r\nhello"))
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    assert (response.status, response.reason, response.content_length) == (
        429,
        "Too Many Requests",
        5,
    )
    assert list(response.headers.items())[:3] == [
        ("Set-Cookie", "a=1"),
        ("X-N", "1"),
        ("set-cookie", "b=2"),
    ]
    assert response.headers.getall("SET-COOKIE") == ["a=1", "b=2"]
    assert await response.read() == b"hello"
    assert await response.read_chunk() == b""
    response.release()
    assert pool.idle_count == 1


async def test_missing_reason_phrase_is_empty(start: Start) -> None:
    _, pool = await start(serve(b"HTTP/1.1 204\r\n\r\n"))
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    assert (response.status, response.reason) == (204, "")
    assert await response.read() == b""
    response.release()
    assert pool.idle_count == 1


async def test_chunked_body_is_decoded(start: Start) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked = head + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    up, pool = await start(serve(chunked))
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    assert response.content_length is None
    assert await response.read() == b"hello world"
    assert await get(pool) == b"hello world"
    assert up.connections == 1


async def test_read_nowait_takes_what_came_with_the_head_and_never_waits(start: Start) -> None:
    async def script(up: Upstream, reader: asyncio.StreamReader, w: Writer) -> None:
        await read_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await w.drain()
        await asyncio.sleep(0.2)
        w.write(b"4\r\nnext\r\n0\r\n\r\n")
        await w.drain()
        await read_request(reader)

    _, pool = await start(script)
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    for _ in range(100):  # the first chunk may trail the head by a moment
        if first := response.read_nowait():
            break
        await asyncio.sleep(0.001)
    assert first == b"first"
    assert response.read_nowait() == b""  # nothing more yet: no wait, no error
    assert await response.read() == b"next"
    response.release()


async def test_body_until_close(start: Start) -> None:
    _, pool = await start(serve(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", close=True))
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    assert response.content_length is None
    assert await response.read() == b"until the end"
    response.release()
    assert (pool.idle_count, pool.connection_count) == (0, 0)


async def test_keep_alive_reuses_one_connection(start: Start) -> None:
    up, pool = await start(serve(OK))
    for _ in range(10):
        assert await get(pool) == b"hello"
    assert (up.connections, pool.connection_count, pool.idle_count) == (1, 1, 1)


async def test_connection_close_is_not_reused(start: Start) -> None:
    up, pool = await start(
        serve(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
    )
    assert await get(pool) == b"ok"
    assert await get(pool) == b"ok"
    assert (up.connections, pool.connection_count) == (2, 0)


async def test_interim_response_is_skipped(start: Start) -> None:
    _, pool = await start(serve(b"HTTP/1.1 100 Continue\r\n\r\n" + OK))
    response = await pool.request("POST", "/", CIMultiDict(), b"x")
    assert (response.status, await response.read()) == (200, b"hello")


async def test_head_response_has_no_body_and_closes(start: Start) -> None:
    _, pool = await start(serve(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))
    response = await pool.request("HEAD", "/", CIMultiDict(), b"")
    assert (response.content_length, await response.read()) == (100, b"")
    response.release()
    assert pool.connection_count == 0


async def test_request_bytes_on_the_wire(start: Start) -> None:
    up, pool = await start(serve(OK))
    headers = CIMultiDict([("X-B", "1"), ("authorization", "Bearer k"), ("x-b", "3")])
    response = await pool.request("POST", "/v1/chat?x=1", headers, b"body")
    await response.read()
    response.release()
    await get(pool, "/models")
    await (await pool.request("PUT", "/empty", CIMultiDict(), b"")).read()
    host = f"127.0.0.1:{up.port}".encode()
    assert up.requests == [
        b"POST /v1/chat?x=1 HTTP/1.1\r\nHost: " + host + b"\r\nX-B: 1\r\n"
        b"authorization: Bearer k\r\nx-b: 3\r\nContent-Length: 4\r\n\r\nbody",
        b"GET /models HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
        b"PUT /empty HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 0\r\n\r\n",
    ]


async def test_host_header_omits_default_port_and_rejects_line_breaks() -> None:
    pool = UpstreamPool("api.example.com", 443, tls=True, connect_timeout=1, read_timeout=1)
    assert pool.encode_head("GET", "/", CIMultiDict(), b"").startswith(
        b"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
    )
    with pytest.raises(ValueError):
        pool.encode_head("GET", "/", CIMultiDict([("X", "a\r\nEvil: 1")]), b"")


async def test_stale_idle_connection_is_resent_on_a_fresh_one(start: Start) -> None:
    async def script(up: Upstream, reader: asyncio.StreamReader, w: Writer) -> None:
        while (request := await read_request(reader)) is not None:
            up.requests.append(request)
            if len(up.requests) == 2:
                return  # closes the kept-alive connection without answering
            w.write(OK)

    up, pool = await start(script)
    assert await get(pool) == b"hello"
    assert await get(pool) == b"hello"
    assert (up.connections, len(up.requests)) == (2, 3)


async def test_idle_connection_closed_by_the_peer_leaves_the_pool(start: Start) -> None:
    up, pool = await start(serve(OK, close=True))
    response = await pool.request("GET", "/", CIMultiDict([("Connection", "keep-alive")]), b"")
    await response.read()
    await up.closed.wait()
    for _ in range(50):
        if pool.connection_count == 0:
            break
        await asyncio.sleep(0.01)
    response.release()
    assert (pool.idle_count, pool.connection_count) == (0, 0)


async def test_fresh_connection_closed_before_the_head(start: Start) -> None:
    async def script(up: Upstream, reader: asyncio.StreamReader, w: Writer) -> None:
        await read_request(reader)

    up, pool = await start(script)
    with pytest.raises(UpstreamDisconnected):
        await pool.request("GET", "/", CIMultiDict(), b"")
    assert (up.connections, pool.connection_count) == (1, 0)


async def test_malformed_head(start: Start) -> None:
    _, pool = await start(serve(b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"))
    with pytest.raises(UpstreamDisconnected, match="malformed"):
        await pool.request("GET", "/", CIMultiDict(), b"")
    assert pool.connection_count == 0


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = UpstreamPool("127.0.0.1", port, tls=False, connect_timeout=1, read_timeout=1)
    with pytest.raises(UpstreamConnectError):
        await pool.request("GET", "/", CIMultiDict(), b"")
    assert pool.connection_count == 0


async def test_connect_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the accept backlog: further SYNs are dropped
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    await asyncio.sleep(0.05)
    pool = UpstreamPool("127.0.0.1", port, tls=False, connect_timeout=0.2, read_timeout=1)
    try:
        with pytest.raises(UpstreamConnectError) as caught:
            await pool.request("GET", "/", CIMultiDict(), b"")
        assert isinstance(caught.value.__cause__, TimeoutError)
        assert pool.connection_count == 0
    finally:
        for sock in [*fillers, listener]:
            sock.close()


async def test_read_timeout_on_the_head(start: Start) -> None:
    async def script(up: Upstream, reader: asyncio.StreamReader, w: Writer) -> None:
        await read_request(reader)
        await asyncio.sleep(10)

    _, pool = await start(script, read_timeout=0.2)
    with pytest.raises(TimeoutError):
        await pool.request("GET", "/", CIMultiDict(), b"")
    assert pool.connection_count == 0


async def _stall_mid_body(
    up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter
) -> None:
    await read_request(reader)
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    await w.drain()
    await asyncio.sleep(10)


async def test_read_timeout_mid_body(start: Start) -> None:
    _, pool = await start(_stall_mid_body, read_timeout=0.2)
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    assert await response.read_chunk() == b"abc"
    with pytest.raises(TimeoutError):
        await response.read_chunk()
    response.release()
    assert pool.connection_count == 0


async def test_the_read_timeout_counts_from_the_last_bytes(start: Start) -> None:
    """One timer per connection checks a deadline each read moves: a stream whose chunks
    keep coming is never timed out, however long it lasts, and a pause is timed out one read
    timeout after the last chunk, neither earlier nor much later."""

    async def script(up: Upstream, reader: asyncio.StreamReader, w: Writer) -> None:
        await read_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(12):  # 0.6 s of chunks, three times the read timeout
            w.write(b"1\r\nx\r\n")
            await w.drain()
            await asyncio.sleep(0.05)
        await asyncio.sleep(10)

    _, pool = await start(script, read_timeout=0.2)
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    received = b""
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        while True:
            received += await response.read_chunk()
            last = loop.time()
    waited = loop.time() - last
    assert received == b"x" * 12
    assert 0.15 <= waited < 0.6, waited
    response.release()
    assert pool.connection_count == 0


async def test_drop_mid_body(start: Start) -> None:
    async def script(up: Upstream, reader: asyncio.StreamReader, w: Writer) -> None:
        await read_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")

    _, pool = await start(script)
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    assert await response.read_chunk() == b"abc"
    with pytest.raises(UpstreamPayloadError):
        await response.read_chunk()
    with pytest.raises(UpstreamPayloadError):
        await response.read()
    response.release()
    assert pool.connection_count == 0


async def test_max_connections_caps_concurrency(start: Start) -> None:
    async def script(up: Upstream, reader: asyncio.StreamReader, w: Writer) -> None:
        while (request := await read_request(reader)) is not None:
            up.requests.append(request)
            await asyncio.sleep(0.05)
            w.write(OK)

    up, pool = await start(script, max_connections=2)
    seen: list[int] = []

    async def one() -> bytes:
        response = await pool.request("GET", "/", CIMultiDict(), b"")
        seen.append(pool.connection_count)
        body = await response.read()
        response.release()
        return body

    assert await asyncio.gather(*(one() for _ in range(5))) == [b"hello"] * 5
    assert up.max_open <= 2 and max(seen) <= 2 and len(up.requests) == 5


async def test_idle_connections_are_swept(start: Start) -> None:
    up, pool = await start(serve(OK), idle_timeout=0.1)
    await get(pool)
    assert pool.idle_count == 1
    await asyncio.wait_for(up.closed.wait(), 2)
    assert (pool.idle_count, pool.connection_count) == (0, 0)


async def test_large_body_with_flow_control(start: Start) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    _, pool = await start(serve(head + body))
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    await asyncio.sleep(0.1)  # let the buffer pass the high-water mark: reading pauses
    assert await response.read() == body
    response.release()
    assert await get(pool) == body
    assert pool.connection_count == 1


async def test_cancelled_request_drops_its_connection(start: Start) -> None:
    _, pool = await start(_stall_mid_body)
    task = asyncio.create_task(pool.request("GET", "/", CIMultiDict(), b""))
    await asyncio.sleep(0.05)
    response = await task
    reader = asyncio.create_task(response.read())
    await asyncio.sleep(0.05)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    response.close()
    assert pool.connection_count == 0
    with pytest.raises(UpstreamPayloadError):
        await response.read_chunk()


async def test_close_fails_in_use_and_later_requests(start: Start) -> None:
    _, pool = await start(_stall_mid_body)
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    await pool.close()
    with pytest.raises(UpstreamPayloadError):
        await response.read()
    with pytest.raises(UpstreamConnectError):
        await pool.request("GET", "/", CIMultiDict(), b"")


async def test_tls(start: Start) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    up, pool = await start(serve(OK), tls=True, ssl_context=client_ctx, server_ssl=server_ctx)
    assert await get(pool) == b"hello"
    assert await get(pool) == b"hello"
    assert up.connections == 1
    assert up.requests[0].startswith(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % up.port)
    untrusting = UpstreamPool("127.0.0.1", up.port, tls=True, connect_timeout=2, read_timeout=2)
    with pytest.raises(UpstreamConnectError):
        await untrusting.request("GET", "/", CIMultiDict(), b"")


async def test_large_request_body(start: Start) -> None:
    up, pool = await start(serve(OK))
    body = b"x" * 300_000
    response = await pool.request("POST", "/big", CIMultiDict(), body)
    assert await response.read() == b"hello"
    assert up.requests[0].endswith(b"Content-Length: 300000\r\n\r\n" + body)


async def test_waiters_get_freed_slots_and_cancelled_waiters_give_them_back(start: Start) -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    up, pool = await start(serve(close), max_connections=1)
    first = await pool.request("GET", "/", CIMultiDict(), b"")
    waiting = [asyncio.create_task(get(pool)) for _ in range(3)]
    await asyncio.sleep(0.01)
    waiting[0].cancel()
    await first.read()
    first.release()
    assert await asyncio.gather(*waiting[1:]) == [b"ok", b"ok"]
    assert waiting[0].cancelled()
    assert (up.connections, up.max_open, pool.connection_count) == (3, 1, 0)


async def test_close_fails_waiters(start: Start) -> None:
    _, pool = await start(_stall_mid_body, max_connections=1)
    await pool.request("GET", "/", CIMultiDict(), b"")
    waiter = asyncio.create_task(pool.request("GET", "/", CIMultiDict(), b""))
    await asyncio.sleep(0.01)
    await pool.close()
    with pytest.raises(UpstreamConnectError):
        await waiter


async def test_unexpected_bytes_make_a_connection_unusable(start: Start) -> None:
    async def script(up: Upstream, reader: asyncio.StreamReader, w: Writer) -> None:
        await read_request(reader)
        if up.connections == 1:
            w.write(OK + OK)  # a second response nobody asked for
            return
        w.write(OK)
        await asyncio.sleep(0.05)
        w.write(b"junk")  # bytes on an idle connection
        await asyncio.sleep(10)

    _, pool = await start(script)
    assert await get(pool) == b"hello"
    assert pool.connection_count == 0
    assert await get(pool) == b"hello"
    assert pool.idle_count == 1
    await asyncio.sleep(0.1)  # the junk arrives: the client closes the connection
    assert (pool.idle_count, pool.connection_count) == (0, 0)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n", "payload"),
        (b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", ""),
    ],
)
async def test_malformed_body_and_upgrade(start: Start, response: bytes, error: str) -> None:
    _, pool = await start(serve(response))
    if not error:
        with pytest.raises(UpstreamDisconnected):
            await pool.request("GET", "/", CIMultiDict(), b"")
        return
    reply = await pool.request("GET", "/", CIMultiDict(), b"")
    assert await reply.read_chunk() == b"abc"
    with pytest.raises(UpstreamPayloadError, match="malformed"):
        await reply.read_chunk()


async def test_sweep_closes_each_idle_connection_on_its_own_time(start: Start) -> None:
    up, pool = await start(serve(OK), idle_timeout=0.3)
    requests = (pool.request("GET", "/", CIMultiDict(), b"") for _ in "ab")
    first, second = await asyncio.gather(*requests)
    await first.read()  # reading to the end releases the connection
    await asyncio.sleep(0.15)
    await second.read()
    await asyncio.sleep(0.25)
    assert (up.connections, pool.idle_count) == (2, 1)
    await asyncio.sleep(0.2)
    assert pool.connection_count == 0


async def test_a_response_released_after_close_frees_its_slot(start: Start) -> None:
    _, pool = await start(serve(OK))
    response = await pool.request("GET", "/", CIMultiDict(), b"")
    await pool.close()
    assert pool.connection_count == 1  # in use: counted until released
    response.release()
    response.release()
    assert (pool.connection_count, pool.idle_count) == (0, 0)


async def test_a_stale_connection_resent_on_a_fresh_one_keeps_one_slot(start: Start) -> None:
    async def script(up: Upstream, reader: asyncio.StreamReader, w: Writer) -> None:
        while (request := await read_request(reader)) is not None:
            up.requests.append(request)
            if len(up.requests) == 2:
                return  # closes the kept-alive connection without answering
            w.write(OK)

    _, pool = await start(script, max_connections=1)
    assert await get(pool) == b"hello"
    assert await get(pool) == b"hello"
    assert (pool.connection_count, pool.idle_count) == (1, 1)
