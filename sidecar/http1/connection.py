"""One app connection of the proxy listener: parse requests, run the handler, write responses."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools
from multidict import CIMultiDict

from sidecar.http1.responder import (
    IncomingRequest,
    RawChannel,
    Responder,
    Upgraded,
    error_response,
)

if TYPE_CHECKING:
    from sidecar.http1.listener import ProxyServer

log = logging.getLogger("sidecar.listener")

# Parsed pipelined requests waiting for their turn before the socket stops being read.
MAX_QUEUED = 8
# Bytes of a request head the parser may buffer beyond max_head_bytes (one socket read
# may also hold the end of the previous request) before the head counts as too large.
HEAD_SLACK = 256 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
BAD_REQUEST = (400, "malformed HTTP request", "bad_request")
HEAD_TOO_LARGE = (431, "request head exceeds {limit} bytes", "request_header_fields_too_large")
INTERNAL_ERROR = b'{"error": {"message": "model-sidecar: internal error", "type": "sidecar_error"}}'
JSON_HEADERS = (("Content-Type", "application/json"),)


class _Stop(Exception):
    """Raised in a parser callback to stop parsing: the connection takes no more input."""


def _tokens(headers: CIMultiDict[str], name: str) -> set[str]:
    return {
        token.strip().lower() for value in headers.getall(name, ()) for token in value.split(",")
    }


def is_websocket_handshake(method: bytes, version: str, headers: CIMultiDict[str]) -> bool:
    """Whether a request is a WebSocket opening handshake (RFC 6455 §4.2.1): a GET over
    HTTP/1.1 asking to upgrade to `websocket`, with a key and a version."""
    return (
        method == b"GET"
        and version == "1.1"
        and "websocket" in _tokens(headers, "Upgrade")
        and "upgrade" in _tokens(headers, "Connection")
        and "Sec-WebSocket-Key" in headers
        and "Sec-WebSocket-Version" in headers
    )


class ServerConnection(asyncio.Protocol):
    """Serves the requests of one app connection one at a time, in order (pipelining allowed)."""

    _transport: asyncio.Transport

    def __init__(self, server: ProxyServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self._loop = loop
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[IncomingRequest] = deque()
        self._task: asyncio.Task[None] | None = None
        self._responder: Responder | None = None
        self.closing = False  # closing or lost: nothing more is written
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._stopped = False  # no more input is parsed
        self._unread = False  # input was left unread: close gracefully (linger)
        self._lingering = False
        self._reject: tuple[int, str, str] | None = None  # the answer owed for bad input
        self._continue_owed = False
        self.in_head = False
        self.in_body = False
        self.requests_started = 0
        self._head_size = 0
        self._head_raw = 0
        self._url = b""
        self._raw_headers: list[tuple[str, str]] = []
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body: list[bytes] = []
        self._body_size = 0
        # A WebSocket handshake: the request its handler may answer by taking the connection
        # over (`take_over`), the bytes read past its head, and then who has the connection.
        self._upgrade = False
        self._upgrade_input = b""
        self._upgraded: Upgraded | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register with the server (which arms the head deadline)."""
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        """Parse; complete requests are run or queued, bad input is answered when idle."""
        if self._upgraded is not None:
            self._upgraded.data_received(data)
            return
        if self._stopped:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            if self._upgrade:
                # The handshake went to its handler: keep what came after its head, and read
                # nothing more until the handler takes the connection over or answers.
                self._upgrade_input = data[exc.args[0] :] if exc.args else b""
                self._transport.pause_reading()
            elif not self._stopped:
                self._stop(BAD_REQUEST)
        except httptools.HttpParserError as exc:
            if not self._stopped:
                if isinstance(exc, httptools.HttpParserCallbackError):
                    log.error("unexpected error while parsing a request", exc_info=exc.__context__)
                self._stop(BAD_REQUEST)
        except Exception:
            log.exception("unexpected error in the proxy listener")
            self.abort()
            return
        if self.in_head and not self._stopped:
            self._head_raw += len(data)
            if self._head_raw > self.server.max_head_bytes + HEAD_SLACK:
                self._stop(HEAD_TOO_LARGE)
        if self._reject is not None and self._task is None and not self._queue:
            self._write_reject()

    def eof_received(self) -> None:
        """The app closed its side: it is gone (the transport closes)."""
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Cancel the handler of an unfinished response and drop queued requests."""
        self.closing = self._stopped = True
        self.server.connection_closed(self)
        self._queue.clear()
        responder = self._responder
        if responder is not None and not responder.finished and self._task is not None:
            self._task.cancel()
        if self._upgraded is not None:
            self._upgraded.connection_lost(exc)
        self.write_paused = False
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def pause_writing(self) -> None:
        """The transport's write buffer is full: drain() waits."""
        self.write_paused = True
        if self._upgraded is not None:
            self._upgraded.pause_writing()

    def resume_writing(self) -> None:
        """The write buffer drained: wake drain()."""
        self.write_paused = False
        if self._upgraded is not None:
            self._upgraded.resume_writing()
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.in_head = True
        self._head_size = self._head_raw = self._body_size = 0
        self._url = b""
        self._raw_headers = []
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > self.server.max_head_bytes:
            self._stop(HEAD_TOO_LARGE)
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name.decode("latin-1"), value.decode("latin-1")))
        self._head_size += len(name) + len(value)
        if self._head_size > self.server.max_head_bytes:
            self._stop(HEAD_TOO_LARGE)
            raise _Stop

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.in_body = True
        headers = self._headers = CIMultiDict(self._raw_headers)
        if self._parser.should_upgrade():
            parser = self._parser
            if (
                not is_websocket_handshake(parser.get_method(), parser.get_http_version(), headers)
                or headers.get("Content-Length", "0") != "0"
                or "Transfer-Encoding" in headers
            ):
                self._stop(BAD_REQUEST)
                raise _Stop
            self._upgrade = True
            return
        length = headers.get("Content-Length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                self._stop(BAD_REQUEST)
                raise _Stop from None
            if size > self.server.max_body_bytes:
                self._give_up(413)
                raise _Stop
            if not size:
                return
        elif "Transfer-Encoding" not in headers:
            return
        idle = self._task is None and not self._queue
        if idle:
            self.server.arm(self)  # the body's deadline
        expect = headers.get("Expect")
        if expect is not None and expect.lower() == "100-continue":
            if idle:
                self.write(CONTINUE)
            else:
                self._continue_owed = True

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.server.max_body_bytes:
            self._give_up(413)
            raise _Stop
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.in_body = False
        self.server.disarm(self)
        parts = self._body
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        parser = self._parser
        # After a WebSocket handshake the connection serves no more HTTP requests.
        keep_alive: bool = parser.should_keep_alive() and not self._upgrade
        if not keep_alive:
            self._stopped = True
        request = IncomingRequest(
            parser.get_method().decode("ascii"),
            self._url.decode("latin-1"),
            self._headers,
            body,
            parser.get_http_version(),
            keep_alive,
            upgrade=self._upgrade,
        )
        self._dispatch(request)

    # running requests

    def _dispatch(self, request: IncomingRequest) -> None:
        if self._task is None and not self._queue:
            self._run(request)
            return
        queue = self._queue
        queue.append(request)
        if len(queue) > MAX_QUEUED and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()

    def _run(self, request: IncomingRequest) -> None:
        self.requests_started += 1
        responder = self._responder = Responder(self, request)
        task = self._task = self._loop.create_task(self._serve(request, responder))
        self.server.request_started(task)

    async def _serve(self, request: IncomingRequest, responder: Responder) -> None:
        """Run the handler; a bug answers a logged JSON 502 (or aborts a started response)."""
        task = self._task
        server = self.server
        try:
            await server.handler(request, responder)
        except asyncio.CancelledError:
            if not responder.finished:
                responder.abort()
            raise
        except Exception:
            path = request.target.partition("?")[0]
            log.exception("unexpected error while forwarding", extra={"path": path})
            if not responder.started:
                responder.send(502, "", JSON_HEADERS, INTERNAL_ERROR)
        finally:
            server.request_done(task)
        if not responder.finished:
            responder.abort()  # never leave the app waiting for the rest
        self._handler_done()

    def _handler_done(self) -> None:
        """The next queued request, the owed error answer, or wait for the next head."""
        self._task = None
        self._responder = None
        if self.closing:
            return
        queue = self._queue
        if self._upgrade and not queue:  # the handshake's handler (or the new protocol) ended
            self.close()
            return
        if queue:
            request = queue.popleft()
            if self._reading_paused and len(queue) <= MAX_QUEUED:
                self._reading_paused = False
                self._transport.resume_reading()
            self._run(request)
            return
        if self._reject is not None:
            self._write_reject()
            return
        if self._continue_owed:
            self._continue_owed = False
            self.write(CONTINUE)
        if self.server.draining and not self.in_body:
            self.close()
            return
        self.server.arm(self)

    def _give_up(self, problem: int) -> None:
        """Hand the handler a request whose body was refused (413 or 408); no more input."""
        parser = self._parser
        request = IncomingRequest(
            parser.get_method().decode("ascii"),
            self._url.decode("latin-1"),
            self._headers,
            b"",
            parser.get_http_version(),
            False,
            problem,
        )
        self._stopped = self._unread = True
        self.in_body = False
        self._body = []
        self.server.disarm(self)
        self._dispatch(request)

    def _stop(self, reject: tuple[int, str, str]) -> None:
        """Take no more input; answer `reject` once the requests before it are answered."""
        self._stopped = self._unread = True
        if self._reject is None:
            self._reject = reject

    def _write_reject(self) -> None:
        assert self._reject is not None
        status, message, kind = self._reject
        self.write(error_response(status, message.format(limit=self.server.max_head_bytes), kind))
        self.close()

    def time_out(self) -> None:
        """The deadline passed: 408 to the handler for a late body, else close."""
        if self.closing:
            self.abort()
        elif self.in_body and not self._stopped:
            self._give_up(408)
        else:
            self.close()

    # a WebSocket handshake's connection, taken over

    def take_over(self, receiver: Upgraded) -> RawChannel:
        """From now on `receiver` gets this connection's input (first what was read past the
        handshake's head) and events; the handshake's handler writes through the returned
        channel (this connection: raw bytes, no HTTP framing)."""
        self._upgraded = receiver
        self.server.disarm(self)
        pending, self._upgrade_input = self._upgrade_input, b""
        if pending:
            receiver.data_received(pending)
        if self.closing:  # lost before the switch: the receiver learns it too
            self._loop.call_soon(receiver.connection_lost, None)
        else:
            if self.write_paused:
                receiver.pause_writing()
            self._transport.resume_reading()
        return self

    def pause_reading(self) -> None:
        """Stop reading from the app (a taken-over connection whose peer is not reading)."""
        if not self.closing:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the app again."""
        if not self.closing:
            self._transport.resume_reading()

    # writing and closing

    def write(self, data: bytes) -> None:
        """Write unless the connection is closing."""
        if not self.closing:
            self._transport.write(data)

    def writelines(self, head: bytes, body: bytes) -> None:
        """Write a head and a large body without joining them."""
        if not self.closing:
            self._transport.writelines((head, body))

    async def drain(self) -> None:
        """Wait until the transport takes writes again (or the connection is lost)."""
        if not self.write_paused:
            return
        waiter = self._drain_waiter
        if waiter is None:
            waiter = self._drain_waiter = self._loop.create_future()
        await waiter

    def close(self) -> None:
        """Close after what was written; with input left unread, linger until the app closes."""
        if self.closing:
            return
        self.closing = self._stopped = True
        transport = self._transport
        if self._unread and transport.can_write_eof():
            # Closing with unread input would reset the connection and could destroy the
            # answer before the app reads it: half-close, discard input until the app
            # closes or the deadline passes.
            self._lingering = True
            transport.write_eof()
            self.server.arm(self)
        else:
            self.server.disarm(self)
            transport.close()

    @property
    def peer_host(self) -> str | None:
        """The address of the connection's peer (the socket's, never a header), if known."""
        peer = self._transport.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) and peer else None

    @property
    def awaiting_first_request(self) -> bool:
        """Open, and no request of this connection has reached the handler yet."""
        return not self.closing and self.requests_started == 0 and not self._queue

    def close_if_idle(self) -> None:
        """Close unless a request is running, queued or its body is arriving."""
        if self._lingering:
            self.abort()
        elif self._task is None and not self._queue and not self.in_body:
            self.close()

    def abort(self) -> None:
        """Drop the connection at once."""
        self.closing = self._stopped = True
        self._transport.abort()

    def kill(self) -> None:
        """Drop the connection and cancel its handler."""
        self.abort()
        if self._task is not None:
            self._task.cancel()
