"""What a proxy-listener handler gets: the request as the app sent it, and its responder."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol

from multidict import CIMultiDict

if TYPE_CHECKING:
    from sidecar.http1.connection import ServerConnection

# Larger bodies are written after their head without being copied into one buffer.
COPY_BODY_BELOW = 16 * 1024
NO_BODY_STATUSES = frozenset({204, 304})
REASONS = {status.value: status.phrase for status in HTTPStatus}


def error_response(status: int, message: str, kind: str) -> bytes:
    """A complete JSON error response that closes the connection."""
    body = json.dumps({"error": {"message": message, "type": kind}}).encode()
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class IncomingRequest:
    """One request as the app sent it; the body is complete when the handler runs.

    `problem` is 413 (body over the limit) or 408 (body not received in time) when the
    listener refused the body: `body` is then empty and the connection closes after the answer.
    `upgrade` marks a WebSocket opening handshake: its handler may take the connection over
    (`Responder.switch_protocols`); answered any other way, the connection closes after it.
    """

    __slots__ = (
        "body",
        "headers",
        "keep_alive",
        "method",
        "problem",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        body: bytes,
        version: str,
        keep_alive: bool,
        problem: int | None = None,
        upgrade: bool = False,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.version = version
        self.keep_alive = keep_alive
        self.problem = problem
        self.upgrade = upgrade


class Upgraded(Protocol):
    """What takes an app connection over after `101 Switching Protocols`: the connection's
    input and flow-control events, as an asyncio.Protocol would get them."""

    def data_received(self, data: bytes) -> None:
        """Bytes from the app."""

    def connection_lost(self, exc: Exception | None) -> None:
        """The app's connection is closed."""

    def pause_writing(self) -> None:
        """The app's connection takes no more writes for now."""

    def resume_writing(self) -> None:
        """The app's connection takes writes again."""


class RawChannel(Protocol):
    """The app's connection after `101 Switching Protocols`: raw bytes, no HTTP framing."""

    def write(self, data: bytes) -> None:
        """Write bytes to the app (nothing once the connection is closing)."""

    def pause_reading(self) -> None:
        """Stop reading from the app until `resume_reading`."""

    def resume_reading(self) -> None:
        """Read from the app again."""

    def close(self) -> None:
        """Close once what was written is sent."""

    def abort(self) -> None:
        """Drop the connection at once."""


class Responder:
    """Writes one response to the app's connection."""

    __slots__ = (
        "_body",
        "_chunked",
        "_close",
        "_conn",
        "_finished",
        "_remaining",
        "_request",
        "_started",
    )

    def __init__(self, conn: ServerConnection, request: IncomingRequest) -> None:
        self._conn = conn
        self._request = request
        self._body = request.method != "HEAD"  # False once the response may carry no body
        self._chunked = False
        self._close = False
        self._remaining: int | None = None  # body bytes still owed after a Content-Length
        self._started = False
        self._finished = False

    @property
    def started(self) -> bool:
        """The head was written (or the response was aborted)."""
        return self._started

    @property
    def peer_host(self) -> str | None:
        """The address of the app's end of the connection (the socket's), if known."""
        return self._conn.peer_host

    @property
    def finished(self) -> bool:
        """The response is complete (or was aborted)."""
        return self._finished

    def send(
        self, status: int, reason: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> None:
        """Write a whole response: head (with Content-Length) and body in one write."""
        if self.started:
            raise RuntimeError("the response has already started")
        if status < 200 or status in NO_BODY_STATUSES:
            head = self._head(status, reason, headers, "")
            body = b""
        else:
            head = self._head(status, reason, headers, f"Content-Length: {len(body)}\r\n")
        conn = self._conn
        if not self._body or not body:
            conn.write(head)
        elif len(body) < COPY_BODY_BELOW:
            conn.write(head + body)
        else:
            conn.writelines(head, body)
        self._finish()

    def start(
        self,
        status: int,
        reason: str,
        headers: Iterable[tuple[str, str]],
        content_length: int | None,
        body: bytes = b"",
    ) -> None:
        """Write the head, and with it `body` (the first body bytes, if any are at hand).

        Without a length the body is chunked (HTTP/1.1) or close-delimited (HTTP/1.0).
        """
        if self.started:
            raise RuntimeError("the response has already started")
        if status < 200 or status in NO_BODY_STATUSES:
            framing = ""
            self._body = False
            self._remaining = 0
        elif content_length is not None:
            framing = f"Content-Length: {content_length}\r\n"
            self._remaining = content_length if self._body else 0
        elif self._request.version != "1.0":
            framing = "Transfer-Encoding: chunked\r\n"
            self._chunked = True
        else:
            framing = ""
            self._close = True
        head = self._head(status, reason, headers, framing)
        framed = self._framed(body)
        self._conn.write(head + framed if framed else head)
        if framed is None:
            self.abort()  # more than the Content-Length: the app must not misparse it

    def write(self, data: bytes) -> None:
        """Body bytes (chunk-framed when chunked); empty data is a no-op."""
        if self._finished:
            return
        framed = self._framed(data)
        if framed:
            self._conn.write(framed)
        elif framed is None:
            self.abort()  # more than the Content-Length: the app must not misparse it

    def _framed(self, data: bytes) -> bytes | None:
        """`data` as it goes on the wire (b"" when nothing is to be sent); None when it
        would exceed the Content-Length."""
        if not data or not self._body:
            return b""
        if self._chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        if self._remaining is not None:
            self._remaining -= len(data)
            if self._remaining < 0:
                return None
        return data

    async def drain(self) -> None:
        """Return at once unless the app's connection stopped taking writes."""
        conn = self._conn
        if conn.write_paused:
            await conn.drain()

    def end(self) -> None:
        """Finish the response; the connection then serves the next request or closes."""
        if self._finished:
            return
        if not self.started:
            raise RuntimeError("end() before start()")
        if not self._body:
            pass
        elif self._chunked:
            self._conn.write(b"0\r\n\r\n")
        elif self._remaining:
            self.abort()  # fewer bytes than the Content-Length promised
            return
        self._finish()

    def switch_protocols(self, head: bytes, receiver: Upgraded) -> RawChannel:
        """Answer an upgrade request with `head` (a complete `101` head, perhaps followed by
        the new protocol's first bytes) and hand the connection to `receiver`: from now on it
        gets the app's bytes (any read past the request head first) and the connection's
        events; the handler keeps running for as long as the new protocol does."""
        if self._started or not self._request.upgrade:
            raise RuntimeError("switch_protocols() needs an upgrade request not yet answered")
        self._started = self._finished = True
        self._conn.write(head)
        return self._conn.take_over(receiver)

    def abort(self) -> None:
        """Break the connection: the app sees an incomplete response."""
        self._started = self._finished = True
        self._close = True
        self._conn.abort()

    def _head(
        self, status: int, reason: str, headers: Iterable[tuple[str, str]], framing: str
    ) -> bytes:
        request = self._request
        if self._close or not request.keep_alive or self._conn.server.draining:
            self._close = True
            framing += "Connection: close\r\n"
        elif request.version == "1.0":
            framing += "Connection: keep-alive\r\n"
        if not reason:
            reason = REASONS.get(status, "Unknown")
        lines = "".join([f"{name}: {value}\r\n" for name, value in headers])
        head = f"HTTP/1.1 {status} {reason}\r\n{lines}{framing}\r\n".encode("latin-1")
        self._started = True
        return head

    def _finish(self) -> None:
        self._finished = True
        if self._close:
            self._conn.close()


Handler = Callable[[IncomingRequest, Responder], Awaitable[None]]
