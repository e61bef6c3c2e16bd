"""The proxy listener's HTTP/1.1 server, over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import httptools
import pytest

from sidecar.http1.listener import IncomingRequest, ProxyServer, Responder

Handler = Callable[[IncomingRequest, Responder], Awaitable[None]]


class Reply:
    """One parsed response."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class ReplyReader:
    """Parses the responses arriving on a raw connection."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[Reply] = []
        self.current = Reply()
        self.eof = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.current.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        self.done.append(self.current)
        self.current = Reply()

    async def replies(self, count: int, timeout: float = 5.0) -> list[Reply]:
        """Wait for `count` complete responses (fewer if the connection closes)."""
        async with asyncio.timeout(timeout):
            while len(self.done) < count and not self.eof:
                data = await self.reader.read(65536)
                if not data:
                    self.eof = True
                    break
                self.parser.feed_data(data)
        return self.done[:count]

    async def closed(self, timeout: float = 5.0) -> bool:
        """Read until the server closes; True when it did (EOF or reset)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except ConnectionResetError:
            pass
        return True


@contextlib.asynccontextmanager
async def serving(handler: Handler, **limits: Any) -> AsyncIterator[ProxyServer]:
    """A started ProxyServer on 127.0.0.1; shut down at the end."""
    limits.setdefault("max_body_bytes", 1000)
    limits.setdefault("client_timeout", 5.0)
    server = ProxyServer(handler, **limits)
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.shutdown(1.0)


def url(server: ProxyServer, path: str = "/") -> str:
    host, port = server.addresses[0]
    return f"http://{host}:{port}{path}"


@contextlib.asynccontextmanager
async def raw(server: ProxyServer) -> AsyncIterator[tuple[ReplyReader, asyncio.StreamWriter]]:
    """A raw connection to the server."""
    host, port = server.addresses[0]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        yield ReplyReader(reader), writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


class Recorder:
    """A handler that keeps every request and answers 200 with the body it got."""

    def __init__(self) -> None:
        self.requests: list[IncomingRequest] = []

    async def __call__(self, request: IncomingRequest, responder: Responder) -> None:
        self.requests.append(request)
        status = request.problem or 200
        responder.send(status, "", [("Content-Type", "text/plain")], b"got:" + request.body)


async def test_the_handler_gets_the_request_as_sent() -> None:
    handler = Recorder()
    async with serving(handler) as server, raw(server) as (replies, writer):
        writer.write(
            b"POST /v1/chat?x=1 HTTP/1.1\r\nHost: h\r\nX-Dup: one\r\nx-dup: two\r\n"
            b"X-Latin: caf\xe9\r\nContent-Length: 5\r\n\r\nhello"
        )
        (reply,) = await replies.replies(1)
    assert (reply.status, reply.body) == (200, b"got:hello")
    (request,) = handler.requests
    assert (request.method, request.target, request.version) == ("POST", "/v1/chat?x=1", "1.1")
    assert request.keep_alive and request.problem is None
    assert list(request.headers.items()) == [
        ("Host", "h"),
        ("X-Dup", "one"),
        ("x-dup", "two"),
        ("X-Latin", "café"),
        ("Content-Length", "5"),
    ]
    assert request.headers.getall("X-DUP") == ["one", "two"]
    assert request.headers["X-Latin"].encode("latin-1") == b"caf\xe9"
    assert request.body == b"hello"


async def test_absolute_form_target_and_http_1_0_are_kept() -> None:
    handler = Recorder()
    async with serving(handler) as server, raw(server) as (replies, writer):
        writer.write(b"GET http://example.com/v1/models HTTP/1.0\r\n\r\n")
        (reply,) = await replies.replies(1)
        assert await replies.closed()
    (request,) = handler.requests
    assert (request.target, request.version, request.keep_alive) == (
        "http://example.com/v1/models",
        "1.0",
        False,
    )
    assert reply.header("Connection") == "close"


async def test_keep_alive_serves_sequential_requests_on_one_connection() -> None:
    handler = Recorder()
    async with serving(handler) as server, raw(server) as (replies, writer):
        for index in range(10):
            writer.write(b"POST /%d HTTP/1.1\r\nContent-Length: 1\r\n\r\nx" % index)
            got = await replies.replies(index + 1)
            assert got[-1].status == 200
            assert got[-1].header("Connection") is None
    assert [r.target for r in handler.requests] == [f"/{i}" for i in range(10)]
    async with serving(handler) as server, aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(url(server, "/a")) as response:
                assert await response.read() == b"got:"


async def test_pipelined_requests_are_handled_one_at_a_time_in_order() -> None:
    running = 0
    most = 0

    async def slow_first(request: IncomingRequest, responder: Responder) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05 if request.target == "/0" else 0)
        running -= 1
        responder.send(200, "", [], request.target.encode())

    async with serving(slow_first) as server, raw(server) as (replies, writer):
        writer.write(b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(30)))
        got = await replies.replies(30)
    assert [reply.body for reply in got] == [b"/%d" % i for i in range(30)]
    assert most == 1


async def test_chunked_request_body_is_buffered_whole() -> None:
    handler = Recorder()
    async with serving(handler) as server, raw(server) as (replies, writer):
        writer.write(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await asyncio.sleep(0.05)
        assert not handler.requests  # the handler runs only with the complete body
        writer.write(b"2\r\nde\r\n0\r\n\r\n")
        (reply,) = await replies.replies(1)
    assert reply.body == b"got:abcde"


async def test_a_body_over_the_limit_reaches_the_handler_as_413_and_closes() -> None:
    handler = Recorder()
    async with serving(handler, max_body_bytes=10) as server:
        async with raw(server) as (replies, writer):
            writer.write(b"POST /a HTTP/1.1\r\nContent-Length: 11\r\n\r\n")
            (reply,) = await replies.replies(1)
            assert reply.status == 413
            assert reply.header("Connection") == "close"
            assert await replies.closed()
        async with raw(server) as (replies, writer):
            writer.write(b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"6\r\nabcdef\r\n6\r\nghijkl\r\n")
            (reply,) = await replies.replies(1)
            assert reply.status == 413
            assert await replies.closed()
        # A client sending a large body at once still reads the answer (no reset).
        async with aiohttp.ClientSession() as http:
            async with http.post(url(server, "/c"), data=b"x" * 2_000_000) as response:
                assert response.status == 413
    assert [(r.target, r.problem, r.body) for r in handler.requests] == [
        ("/a", 413, b""),
        ("/b", 413, b""),
        ("/c", 413, b""),
    ]


async def test_expect_100_continue_is_answered_before_the_body() -> None:
    handler = Recorder()
    async with serving(handler) as server, raw(server) as (replies, writer):
        writer.write(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        interim = await replies.reader.readuntil(b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"ok")
        (reply,) = await replies.replies(1)
    assert reply.body == b"got:ok"


async def test_connections_waiting_for_a_head_are_closed_after_the_client_timeout() -> None:
    async with serving(Recorder(), client_timeout=0.2) as server:
        async with raw(server) as (replies, writer):
            started = time.monotonic()
            assert await replies.closed()
            assert 0.15 < time.monotonic() - started < 1.0
        async with raw(server) as (replies, writer):
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            await replies.replies(1)
            started = time.monotonic()  # idle keep-alive: the same deadline
            writer.write(b"GET / HTTP/1.1\r\nHost:")  # a head that never ends
            assert await replies.closed()
            assert 0.15 < time.monotonic() - started < 1.0
            assert len(replies.done) == 1


async def test_a_late_body_reaches_the_handler_as_408() -> None:
    handler = Recorder()
    async with (
        serving(handler, client_timeout=0.2) as server,
        raw(server) as (replies, writer),
    ):
        writer.write(b"POST /slow HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        started = time.monotonic()
        (reply,) = await replies.replies(1)
        assert 0.15 < time.monotonic() - started < 1.0
        assert reply.status == 408
        assert reply.header("Connection") == "close"
    assert [(r.target, r.problem) for r in handler.requests] == [("/slow", 408)]


async def test_a_running_handler_has_no_deadline() -> None:
    async def slow(request: IncomingRequest, responder: Responder) -> None:
        await asyncio.sleep(0.6)
        responder.send(200, "", [], b"late but fine")

    async with (
        serving(slow, client_timeout=0.2) as server,
        aiohttp.ClientSession() as http,
        http.get(url(server)) as response,
    ):
        assert await response.read() == b"late but fine"


BAD_INPUT = [
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400, "bad_request"),
    (b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 400, None),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n", 431, None),
    (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", 431, None),
]


@pytest.mark.parametrize(("request_bytes", "status", "kind"), BAD_INPUT)
async def test_bad_input_is_answered_with_json_and_closed(
    request_bytes: bytes, status: int, kind: str | None
) -> None:
    handler = Recorder()
    async with (
        serving(handler, max_head_bytes=1024) as server,
        raw(server) as (replies, writer),
    ):
        writer.write(request_bytes)
        (reply,) = await replies.replies(1)
        assert await replies.closed()
    assert reply.status == status
    assert reply.header("Connection") == "close"
    error = json.loads(reply.body)["error"]
    if kind is not None:
        assert error == {"message": "malformed HTTP request", "type": kind}
    assert not handler.requests


async def test_an_endless_header_value_is_cut_off() -> None:
    async with (
        serving(Recorder(), max_head_bytes=1024) as server,
        raw(server) as (replies, writer),
    ):
        writer.write(b"GET / HTTP/1.1\r\nX-Endless: ")
        for _ in range(8):  # 512 KiB: past max_head_bytes plus the parser's slack
            writer.write(b"a" * 65536)
            await writer.drain()
        (reply,) = await replies.replies(1)
    assert reply.status == 431


async def test_bad_input_after_a_pipelined_request_is_answered_after_it() -> None:
    handler = Recorder()
    async with serving(handler) as server, raw(server) as (replies, writer):
        writer.write(b"GET /ok HTTP/1.1\r\n\r\nNONSENSE\r\n\r\n")
        got = await replies.replies(2)
    assert [reply.status for reply in got] == [200, 400]


async def test_an_unexpected_error_becomes_a_logged_json_502(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: IncomingRequest, responder: Responder) -> None:
        raise RuntimeError("a bug")

    with caplog.at_level(logging.ERROR, logger="sidecar.listener"):
        async with serving(broken) as server:
            async with raw(server) as (replies, writer):  # the connection survives
                for count in (1, 2):
                    writer.write(b"POST /v1/chat/completions?key=secret HTTP/1.1\r\n\r\n")
                    reply = (await replies.replies(count))[-1]
                    assert reply.status == 502
                    assert json.loads(reply.body) == {
                        "error": {
                            "message": "model-sidecar: internal error",
                            "type": "sidecar_error",
                        }
                    }
            async with aiohttp.ClientSession() as http:  # and so does the server
                async with http.post(url(server, "/v1/chat/completions")) as response:
                    assert response.status == 502
    assert "unexpected error while forwarding" in caplog.text
    assert all(getattr(r, "path", None) == "/v1/chat/completions" for r in caplog.records)


async def test_a_broken_or_unfinished_started_response_is_aborted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: IncomingRequest, responder: Responder) -> None:
        responder.start(200, "", [], None)
        responder.write(b"partial")
        if request.target == "/raise":
            raise RuntimeError("a bug mid-stream")

    with caplog.at_level(logging.ERROR, logger="sidecar.listener"):
        async with serving(broken) as server, aiohttp.ClientSession() as http:
            for path in ("/raise", "/return"):
                async with http.get(url(server, path)) as response:
                    assert response.status == 200
                    with pytest.raises(aiohttp.ClientPayloadError):
                        await response.read()
    assert caplog.text.count("unexpected error while forwarding") == 1


async def test_an_app_that_goes_away_cancels_its_handler() -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def forever(request: IncomingRequest, responder: Responder) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with serving(forever) as server:
        async with raw(server) as (_, writer):
            writer.write(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
            await asyncio.wait_for(started.wait(), 5)
            assert server.in_flight == 1
        await asyncio.wait_for(cancelled.wait(), 5)
        await asyncio.sleep(0.01)
        assert server.in_flight == 0


async def test_streamed_responses() -> None:
    async def stream(request: IncomingRequest, responder: Responder) -> None:
        length = 6 if request.target == "/length" else None
        responder.start(201, "Made", [("X-A", "1")], length)
        for part in (b"abc", b"", b"def"):
            responder.write(part)
            await responder.drain()
        responder.end()

    async with serving(stream) as server:
        async with raw(server) as (replies, writer):
            writer.write(b"GET /chunked HTTP/1.1\r\n\r\nGET /length HTTP/1.1\r\n\r\n")
            chunked, sized = await replies.replies(2)
        assert (chunked.status, chunked.body) == (201, b"abcdef")
        assert chunked.header("Transfer-Encoding") == "chunked"
        assert chunked.header("Content-Length") is None
        assert (sized.body, sized.header("Content-Length")) == (b"abcdef", "6")
        async with raw(server) as (replies, writer):
            writer.write(b"GET /until-close HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            data = await asyncio.wait_for(replies.reader.read(), 5)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 201 Made\r\n")
        assert b"Connection: close" in head and b"Transfer-Encoding" not in head
        assert body == b"abcdef"


async def test_the_first_body_bytes_go_out_with_the_head() -> None:
    more = asyncio.Event()

    async def stream(request: IncomingRequest, responder: Responder) -> None:
        length = 6 if request.target == "/length" else None
        responder.start(200, "", [("X-A", "1")], length, b"abc")
        await more.wait()  # the app has the head and the first bytes before anything else
        responder.write(b"def")
        responder.end()

    async with serving(stream) as server:
        for target, first in (("/chunked", b"3\r\nabc\r\n"), ("/length", b"abc")):
            more.clear()
            async with raw(server) as (replies, writer):
                writer.write(f"GET {target} HTTP/1.1\r\n\r\n".encode())
                head = await asyncio.wait_for(replies.reader.readuntil(b"\r\n\r\n"), 5)
                assert head.startswith(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n")
                assert await asyncio.wait_for(replies.reader.readexactly(len(first)), 5) == first
                more.set()
                rest = await asyncio.wait_for(replies.reader.readexactly(len(first)), 5)
                assert rest == first.replace(b"abc", b"def")


async def test_framing_of_whole_responses() -> None:
    async def answer(request: IncomingRequest, responder: Responder) -> None:
        status = int(request.target[1:])
        reason = request.headers.get("X-Reason", "")
        responder.send(status, reason, [("X-S", str(status))], b"body")

    async with serving(answer) as server, raw(server) as (replies, writer):
        writer.write(
            b"GET /200 HTTP/1.1\r\n\r\nGET /204 HTTP/1.1\r\n\r\n"
            b"GET /429 HTTP/1.1\r\nX-Reason: Slow Down\r\n\r\nGET /599 HTTP/1.1\r\n\r\n"
            b"GET /304 HTTP/1.1\r\n\r\n"
        )
        await replies.replies(5)
    ok, empty, limited, unknown, not_modified = replies.done
    assert (ok.body, ok.header("Content-Length")) == (b"body", "4")
    assert (empty.body, empty.header("Content-Length")) == (b"", None)
    assert (not_modified.body, not_modified.header("Content-Length")) == (b"", None)
    assert limited.status == 429 and unknown.status == 599
    async with serving(answer) as server, raw(server) as (replies, writer):
        writer.write(b"GET /429 HTTP/1.1\r\n\r\n")
        raw_bytes = await replies.reader.readuntil(b"\r\n\r\n")
        writer.write(b"GET /599 HTTP/1.1\r\nX-Reason: \r\n\r\n")
        await replies.reader.readexactly(4)
        raw_bytes += await replies.reader.readuntil(b"\r\n\r\n")
    assert raw_bytes == (
        b"HTTP/1.1 429 Too Many Requests\r\nX-S: 429\r\nContent-Length: 4\r\n\r\n"
        b"HTTP/1.1 599 Unknown\r\nX-S: 599\r\nContent-Length: 4\r\n\r\n"
    )


async def test_a_head_request_gets_the_head_only() -> None:
    async def answer(request: IncomingRequest, responder: Responder) -> None:
        if request.target == "/stream":
            responder.start(200, "", [], None)
            responder.write(b"ignored")
            responder.end()
        else:
            responder.send(200, "", [], b"ignored")

    async with serving(answer) as server, raw(server) as (replies, writer):
        writer.write(b"HEAD /whole HTTP/1.1\r\n\r\nHEAD /stream HTTP/1.1\r\n\r\n")
        whole = await replies.reader.readuntil(b"\r\n\r\n")
        stream = await replies.reader.readuntil(b"\r\n\r\n")
        writer.write(b"GET /whole HTTP/1.1\r\n\r\n")  # no body bytes came in between
        (reply,) = await replies.replies(1)
    assert whole == b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"
    assert stream == b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert reply.body == b"ignored"


async def test_a_wrong_body_length_aborts() -> None:
    async def wrong(request: IncomingRequest, responder: Responder) -> None:
        responder.start(200, "", [], 5)
        responder.write(b"abc" if request.target == "/short" else b"abcdef")
        responder.end()
        assert responder.finished

    async with serving(wrong) as server, aiohttp.ClientSession() as http:
        for path in ("/short", "/long"):
            async with http.get(url(server, path)) as response:
                with pytest.raises(aiohttp.ClientPayloadError):
                    await response.read()


async def test_drain_waits_while_the_app_does_not_read() -> None:
    written = 0
    finished = asyncio.Event()

    async def flood(request: IncomingRequest, responder: Responder) -> None:
        nonlocal written
        responder.start(200, "", [], 64 * 1024 * 1024)
        for _ in range(1024):
            responder.write(b"x" * 65536)
            written += 65536
            await responder.drain()
        responder.end()
        finished.set()

    async with serving(flood) as server, raw(server) as (replies, writer):
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        await asyncio.sleep(0.3)
        assert written < 32 * 1024 * 1024  # held back by the app's full socket
        total = 0
        while total < 64 * 1024 * 1024:
            total += len(await replies.reader.read(1 << 20))
        await asyncio.wait_for(finished.wait(), 5)


async def test_a_request_with_connection_close_gets_its_answer_then_a_close() -> None:
    handler = Recorder()
    async with serving(handler) as server, raw(server) as (replies, writer):
        writer.write(b"GET /1 HTTP/1.1\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        (reply,) = await replies.replies(2)
        assert await replies.closed()
    assert reply.header("Connection") == "close"
    assert [r.target for r in handler.requests] == ["/1"]


async def test_shutdown_closes_idle_lets_requests_finish_and_aborts_the_rest() -> None:
    release = asyncio.Event()
    entered: list[str] = []

    async def handler(request: IncomingRequest, responder: Responder) -> None:
        entered.append(request.target)
        if request.target == "/stuck":
            await asyncio.sleep(30)
        await release.wait()
        responder.send(200, "", [], b"done")

    server = ProxyServer(handler, max_body_bytes=100, client_timeout=5)
    await server.start("127.0.0.1", 0)
    host, port = server.addresses[0]
    async with raw(server) as (idle, _), raw(server) as (busy, w1), raw(server) as (stuck, w2):
        w1.write(b"GET /busy HTTP/1.1\r\n\r\n")
        w2.write(b"GET /stuck HTTP/1.1\r\n\r\n")
        while len(entered) < 2:
            await asyncio.sleep(0.01)
        assert server.in_flight == 2
        shutdown = asyncio.create_task(server.shutdown(0.5))
        assert await idle.closed(1.0)
        with pytest.raises(OSError):
            await asyncio.open_connection(host, port)
        release.set()
        (reply,) = await busy.replies(1)
        assert (reply.body, reply.header("Connection")) == (b"done", "close")
        started = time.monotonic()
        assert await stuck.closed(2.0)
        assert not stuck.done
        await shutdown
        assert 0.2 < time.monotonic() - started < 1.5
        assert server.in_flight == 0


async def test_a_first_request_sent_as_the_drain_begins_is_answered() -> None:
    # Accepted before the drain, its request arrives a moment after: closing the
    # connection then would drop a valid call. A keep-alive connection that sits idle
    # after its request is closed at once, and a silent one after the short grace.
    handler = Recorder()
    server = ProxyServer(handler, max_body_bytes=100, client_timeout=5)
    await server.start("127.0.0.1", 0)
    async with (
        raw(server) as (late, late_w),
        raw(server) as (used, used_w),
        raw(server) as (
            silent,
            _,
        ),
    ):
        used_w.write(b"GET /first HTTP/1.1\r\n\r\n")
        (reply,) = await used.replies(1)
        assert reply.status == 200
        late_w.write(b"POST /late HTTP/1.1\r\nContent-Le")
        await asyncio.sleep(0.05)
        started = time.monotonic()
        shutdown = asyncio.create_task(server.shutdown(5.0))
        assert await used.closed(0.2)
        await asyncio.sleep(0.1)
        late_w.write(b"ngth: 2\r\n\r\nhi")
        (reply,) = await late.replies(1)
        assert (reply.status, reply.body, reply.header("Connection")) == (200, b"got:hi", "close")
        assert await silent.closed(1.0)
        assert await shutdown == 0
        assert time.monotonic() - started < 1.0


async def test_set_limits_applies_to_new_requests() -> None:
    handler = Recorder()
    async with serving(handler, max_body_bytes=100) as server:
        server.set_limits(max_body_bytes=3, client_timeout=0.2)
        async with raw(server) as (replies, writer):
            writer.write(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd")
            (reply,) = await replies.replies(1)
        assert reply.status == 413
        async with raw(server) as (replies, writer):
            started = time.monotonic()
            assert await replies.closed()
            assert time.monotonic() - started < 1.0


# `serve` runs on uvloop, whose transports behave differently in places: run the tests
# that need no fixture again on uvloop (a plain test function owns its own loop).
ON_UVLOOP: list[Callable[[], Awaitable[None]]] = [
    case
    for name, case in list(globals().items())
    if name.startswith("test_")
    and inspect.iscoroutinefunction(case)
    and not inspect.signature(case).parameters
]
ON_UVLOOP += [
    functools.partial(test_bad_input_is_answered_with_json_and_closed, *case) for case in BAD_INPUT
]


@pytest.mark.parametrize(
    "case", ON_UVLOOP, ids=lambda case: getattr(case, "__name__", "test_bad_input")
)
def test_on_uvloop(case: Callable[[], Awaitable[None]]) -> None:
    uvloop = pytest.importorskip("uvloop")
    uvloop.run(case())
