"""One upstream connection: writes a request, parses the response as its bytes arrive."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools
from multidict import CIMultiDict

from sidecar.http1.errors import UpstreamDisconnected, UpstreamPayloadError

_HIGH_WATER = 256 * 1024
_SINGLE_WRITE_MAX = 64 * 1024


class _Spurious(Exception):
    """The upstream started another response on a connection with no request outstanding."""


class UpstreamConnection(asyncio.Protocol):
    """One upstream connection of a pool: writes requests, parses responses.

    The response state is in plain attributes (read per chunk by the response, so no
    properties), written only by this class: `status`, `reason`, `headers`, `head_received`
    (the final, non-1xx head was parsed), `ended` (the body is complete), `error`, `buffered`
    (body bytes received and not yet taken) and `got_bytes` (anything arrived since the request).
    """

    __slots__ = (
        "_active",
        "_buf",
        "_deadline",
        "_head_only",
        "_idle_lost",
        "_interim",
        "_keep",
        "_loop",
        "_lost",
        "_parser",
        "_paused",
        "_timeout",
        "_timer",
        "_timer_at",
        "_transport",
        "_waiter",
        "buffered",
        "ended",
        "error",
        "got_bytes",
        "head_received",
        "headers",
        "reason",
        "status",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        idle_lost: Callable[[UpstreamConnection], None],
    ) -> None:
        """`idle_lost` is told when the connection closes while no request is outstanding."""
        self._loop = loop
        self._idle_lost = idle_lost
        self._transport: asyncio.Transport = cast(asyncio.Transport, None)
        self._parser = httptools.HttpResponseParser(self)
        self._active = False  # a request is out and its response not released
        self._lost = False
        self._waiter: asyncio.Future[None] | None = None
        # The read deadline of the wait under way, and the one timer that checks it.
        self._deadline = 0.0
        self._timeout = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._buf: deque[bytes] = deque()
        self.buffered = 0
        self._paused = False
        self.headers: CIMultiDict[str] = CIMultiDict()
        self._reset(False)

    def _reset(self, head_only: bool) -> None:
        self._head_only = head_only
        self.status = 0
        self.reason = b""
        self.head_received = False
        self._interim = False
        self.ended = False
        self._keep = False
        self.error: BaseException | None = None
        self.got_bytes = False

    # -- driven by the pool and the response

    def send(self, head: bytes, body: bytes, head_only: bool) -> None:
        """Write one request (head and body together); the response state starts afresh."""
        self._reset(head_only)
        self._active = True
        transport = self._transport
        if self._lost or transport.is_closing():
            self.error = UpstreamDisconnected("upstream connection closed before the request")
        elif len(body) <= _SINGLE_WRITE_MAX:
            transport.write(head + body)
        else:
            transport.writelines((head, body))

    async def wait(self, timeout: float) -> None:
        """Wait (at most `timeout`, else TimeoutError and abort) for the next bytes or the end.

        A stream waits once per chunk: instead of a timer armed and cancelled each time (at
        1,000 streams, 50,000 timer starts and stops a second), each wait only moves the
        connection's deadline, and one timer per connection, armed on the first wait, looks at
        it when it fires and re-arms itself for the deadline it then finds (issue #23).
        """
        loop = self._loop
        fut = loop.create_future()
        self._waiter = fut
        deadline = loop.time() + timeout
        self._deadline = deadline
        self._timeout = timeout
        if self._timer is None or deadline < self._timer_at:
            self._arm(deadline)
        try:
            await fut
        finally:
            self._waiter = None

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._check_deadline)

    def _check_deadline(self) -> None:
        """The timer fired: time the wait out if its deadline passed, else look again then.
        With no wait under way the timer stops until the next wait arms it."""
        self._timer = None
        fut = self._waiter
        if fut is None or fut.done():
            return
        if self._loop.time() >= self._deadline:
            self._timed_out(fut, self._timeout)
        else:
            self._arm(self._deadline)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def take(self) -> bytes:
        """All buffered body bytes; reading resumes if it was paused."""
        buf = self._buf
        data = buf.popleft() if len(buf) == 1 else b"".join(buf)
        buf.clear()
        self.buffered = 0
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        return data

    def reusable(self) -> bool:
        """Whether the response was complete and the connection may carry another request."""
        return (
            self.ended
            and self._keep
            and self.error is None
            and not self._lost
            and not self._transport.is_closing()
        )

    def idle(self) -> None:
        """The response was released: forget what is left of it."""
        self._active = False
        if self._buf:
            self._buf.clear()
            self.buffered = 0
        if self._paused:
            self._paused = False
            self._transport.resume_reading()

    def close(self) -> None:
        """Close gracefully once the response was read to its end (or when idle), else abort."""
        if self.ended and not self.buffered:
            self._transport.close()
        else:
            self._transport.abort()

    def abort(self) -> None:
        """Drop the connection at once."""
        self._transport.abort()

    def _timed_out(self, fut: asyncio.Future[None], timeout: float) -> None:
        if fut.done():
            return
        if self.error is None:
            self.error = TimeoutError(f"upstream sent nothing for {timeout:g} s")
        self._keep = False
        fut.set_result(None)
        self._transport.abort()

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if not self._active:  # bytes on an idle connection: it cannot be trusted any more
            self._transport.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._broken("upstream switched protocols")
        except httptools.HttpParserError as exc:
            self._broken(f"malformed response from upstream: {exc}")

    def _broken(self, message: str) -> None:
        self._keep = False
        if not self.head_received:
            self._fail(UpstreamDisconnected(message))
        elif not self.ended:
            self._fail(UpstreamPayloadError(message))
        self._transport.abort()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._stop_timer()
        if not self._active:
            self._idle_lost(self)
            return
        if not self.head_received:
            why = f": {exc}" if exc else ""
            self._fail(UpstreamDisconnected(f"upstream closed the connection before the head{why}"))
        elif not self.ended:
            headers = self.headers
            if (
                exc is None
                and "Content-Length" not in headers
                and "chunked" not in headers.get("Transfer-Encoding", "").lower()
            ):  # a body delimited by the connection's end
                self.ended = True
                self._wake()
            else:
                self._fail(UpstreamPayloadError("upstream closed the connection mid-body"))

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self.head_received:
            raise _Spurious
        self.headers = CIMultiDict()
        self.reason = b""

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._interim = True
            return
        self.status = status
        self.head_received = True
        if self._head_only:
            self.ended = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.ended:  # the body of a response to HEAD is not read
            return
        self._buf.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self._paused:
            self._paused = True
            self._transport.pause_reading()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self.ended:
            return
        self.ended = True
        self._keep = self._parser.should_keep_alive()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
