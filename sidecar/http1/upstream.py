"""Pooled upstream connections: one connection's protocol and the slot bookkeeping."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, cast

import httptools
from multidict import CIMultiDict

from sidecar.http1.errors import UpstreamDisconnected, UpstreamPayloadError

if TYPE_CHECKING:
    from sidecar.http1.client import UpstreamPool

_HIGH_WATER = 256 * 1024
_SINGLE_WRITE_MAX = 64 * 1024


class _Spurious(Exception):
    """The upstream started another response on a connection with no request outstanding."""


class UpstreamConnection(asyncio.Protocol):
    """One upstream connection (internal to the pool): writes requests, parses responses."""

    __slots__ = (
        "_active",
        "_buf",
        "_buffered",
        "_done",
        "_dropped",
        "_error",
        "_got_bytes",
        "_head",
        "_head_only",
        "_headers",
        "_interim",
        "_keep",
        "_lost",
        "_parser",
        "_paused",
        "_pool",
        "_reason",
        "_status",
        "_transport",
        "_waiter",
    )

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self._transport: asyncio.Transport = cast(asyncio.Transport, None)
        self._parser = httptools.HttpResponseParser(self)
        self._active = False  # a request is out and its response not released
        self._dropped = False  # the pool has forgotten this connection
        self._lost = False
        self._waiter: asyncio.Future[None] | None = None
        self._buf: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._reset(False)

    def _reset(self, head_only: bool) -> None:
        self._head_only = head_only
        self._status = 0
        self._reason = b""
        self._head = False  # the final (non-1xx) response head was parsed
        self._interim = False
        self._done = False  # the body is complete
        self._keep = False
        self._error: BaseException | None = None
        self._got_bytes = False

    # -- driven by the pool and the response

    def send(self, head: bytes, body: bytes, head_only: bool) -> None:
        """Write one request (head and body together); the response state starts afresh."""
        self._reset(head_only)
        self._active = True
        transport = self._transport
        if self._lost or transport.is_closing():
            self._error = UpstreamDisconnected("upstream connection closed before the request")
        elif len(body) <= _SINGLE_WRITE_MAX:
            transport.write(head + body)
        else:
            transport.writelines((head, body))

    async def wait(self, timeout: float) -> None:
        """Wait (at most `timeout`, else TimeoutError and abort) for the next bytes or the end."""
        loop = self._pool._loop
        assert loop is not None
        fut = loop.create_future()
        self._waiter = fut
        timer = loop.call_later(timeout, self._timed_out, fut, timeout)
        try:
            await fut
        finally:
            timer.cancel()
            self._waiter = None

    def take(self) -> bytes:
        """All buffered body bytes; reading resumes if it was paused."""
        buf = self._buf
        data = buf.popleft() if len(buf) == 1 else b"".join(buf)
        buf.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        return data

    def reusable(self) -> bool:
        """Whether the response was complete and the connection may carry another request."""
        return (
            self._done
            and self._keep
            and self._error is None
            and not self._lost
            and not self._transport.is_closing()
        )

    def idle(self) -> None:
        """The response was released: forget what is left of it."""
        self._active = False
        if self._buf:
            self._buf.clear()
            self._buffered = 0
        if self._paused:
            self._paused = False
            self._transport.resume_reading()

    def discard(self) -> None:
        """Close the connection; the slots have already forgotten it."""
        self._dropped = True
        self._pool._conns.discard(self)
        self._transport.close()

    def _timed_out(self, fut: asyncio.Future[None], timeout: float) -> None:
        if fut.done():
            return
        if self._error is None:
            self._error = TimeoutError(f"upstream sent nothing for {timeout:g} s")
        self._keep = False
        fut.set_result(None)
        self._transport.abort()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
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
        if not self._head:
            self._fail(UpstreamDisconnected(message))
        elif not self._done:
            self._fail(UpstreamPayloadError(message))
        self._transport.abort()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if not self._active:
            if not self._dropped and self._pool._idle_lost(self):
                self._dropped = True
            return
        if not self._head:
            why = f": {exc}" if exc else ""
            self._fail(UpstreamDisconnected(f"upstream closed the connection before the head{why}"))
        elif not self._done:
            headers = self._headers
            if (
                exc is None
                and "Content-Length" not in headers
                and "chunked" not in headers.get("Transfer-Encoding", "").lower()
            ):  # a body delimited by the connection's end
                self._done = True
                self._wake()
            else:
                self._fail(UpstreamPayloadError("upstream closed the connection mid-body"))

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self._head:
            raise _Spurious
        self._headers = CIMultiDict()
        self._reason = b""

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._interim = True
            return
        self._status = status
        self._head = True
        if self._head_only:
            self._done = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._done:  # the body of a response to HEAD is not read
            return
        self._buf.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused:
            self._paused = True
            self._transport.pause_reading()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._done:
            return
        self._done = True
        self._keep = self._parser.should_keep_alive()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Pooled(Protocol):
    """What the slots need from a pooled connection."""

    def discard(self) -> None:
        """Close the connection; the slots have already forgotten it."""


C = TypeVar("C", bound=Pooled)


class PoolClosed(Exception):
    """The pool was closed while waiting for a connection slot."""


class ConnectionSlots(Generic[C]):
    """Counts open connections, keeps idle ones (LIFO) and queues waiters (FIFO) at the cap."""

    __slots__ = ("_count", "_idle", "_idle_timeout", "_loop", "_max", "_sweep", "_waiters")

    def __init__(self, max_connections: int, idle_timeout: float) -> None:
        self._max = max_connections
        self._idle_timeout = idle_timeout
        self._count = 0
        self._idle: list[tuple[float, C]] = []
        self._waiters: deque[asyncio.Future[C | None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def count(self) -> int:
        """Open (or connecting) connections, idle ones included."""
        return self._count

    @property
    def idle_count(self) -> int:
        """Idle connections ready for reuse."""
        return len(self._idle)

    def take(self) -> C | None:
        """The most recently released idle connection, if any."""
        return self._idle.pop()[1] if self._idle else None

    def reserve(self) -> bool:
        """Reserve a slot for a new connection; False at the cap."""
        if self._max <= 0 or self._count < self._max:
            self._count += 1
            return True
        return False

    async def wait(self) -> C | None:
        """Wait (FIFO) for a released connection, or None: a freed slot is reserved for us."""
        fut: asyncio.Future[C | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                conn = fut.result()
                if conn is None:
                    self.free()
                else:
                    self.put(conn)
            raise

    def put(self, conn: C) -> None:
        """Give back a reusable connection: to the first waiter, else to the idle list."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._idle.append((loop.time(), conn))
        if self._sweep is None:
            self._sweep = loop.call_later(self._idle_timeout, self._expire)

    def free(self) -> None:
        """A connection closed (or failed to open): its slot goes to the first waiter."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._count -= 1

    def remove_idle(self, conn: C) -> bool:
        """Forget an idle connection the peer closed (frees its slot); False if it was not idle."""
        for i, (_, idle) in enumerate(self._idle):
            if idle is conn:
                del self._idle[i]
                self.free()
                return True
        return False

    def close(self) -> list[C]:
        """Fail the waiters, stop the sweep; the idle connections (forgotten) are returned."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(PoolClosed())
        idle = [conn for _, conn in self._idle]
        self._idle.clear()
        self._count -= len(idle)
        return idle

    def _expire(self) -> None:
        """The sweep: close connections idle for idle_timeout, re-arm for the oldest one left."""
        self._sweep = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        idle = self._idle
        cutoff = now - self._idle_timeout
        n = 0
        while n < len(idle) and idle[n][0] <= cutoff:
            n += 1
        expired = idle[:n]
        del idle[:n]
        for _, conn in expired:
            self.free()
            conn.discard()
        if idle:
            delay = max(idle[0][0] + self._idle_timeout - now, 0.001)
            self._sweep = loop.call_later(delay, self._expire)
