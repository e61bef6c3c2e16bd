"""The upstream HTTP/1.1 client: UpstreamPool, keep-alive connections to one origin."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from multidict import CIMultiDict

from sidecar.http1.errors import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamPayloadError,
)
from sidecar.http1.response import UpstreamResponse
from sidecar.http1.slots import ConnectionSlots, PoolClosed
from sidecar.http1.upstream import UpstreamConnection

# What the client's users import from here: the pool, its responses and its errors.
__all__ = [
    "SharedTls",
    "UpstreamConnectError",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamPayloadError",
    "UpstreamPool",
    "UpstreamResponse",
]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class SharedTls:
    """One client TLS context for every upstream pool, made on the first TLS connection.

    `ssl.create_default_context()` loads the whole CA bundle: ~20 ms and ~1.1 MB of RSS each
    (measured), which the sidecar used to pay per configured upstream at start-up, before any
    call (issue #23). The context verifies certificates and host names as before; it reads
    SSL_CERT_FILE / SSL_CERT_DIR when it is made.
    """

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self._context = context

    def context(self) -> ssl.SSLContext:
        """The context, made now if no connection needed it yet."""
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context


class UpstreamPool:
    """Pooled keep-alive HTTP/1.1 connections to one upstream origin."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int = 0,
        idle_timeout: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
        shared_tls: SharedTls | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._connect_timeout = connect_timeout
        self.read_timeout = read_timeout  # read by every response per wait: no property
        # With TLS, where its context comes from (made on the first connection).
        self._tls: SharedTls | None = None
        if tls:
            self._tls = SharedTls(ssl_context) if ssl_context or not shared_tls else shared_tls
        self._server_hostname = host if tls else None
        name = f"[{host}]" if ":" in host else host
        self._host_header = name if port == (443 if tls else 80) else f"{name}:{port}"
        self._origin = f"{'https' if tls else 'http'}://{name}:{port}"
        self._slots: ConnectionSlots[UpstreamConnection] = ConnectionSlots(
            max_connections, idle_timeout, self._expired
        )
        self._conns: set[UpstreamConnection] = set()  # open and not yet dropped
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def idle_count(self) -> int:
        """Idle keep-alive connections."""
        return self._slots.idle_count

    @property
    def connection_count(self) -> int:
        """Open (or opening) connections, idle ones included."""
        return self._slots.count

    async def request(
        self, method: str, target: str, headers: CIMultiDict[str], body: bytes
    ) -> UpstreamResponse:
        """Send one request; returns once the response head is parsed."""
        if self._closed:
            raise UpstreamConnectError("the upstream pool is closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        head = self.encode_head(method, target, headers, body)
        head_only = method == "HEAD"
        slots = self._slots
        conn = slots.take()
        if conn is None and not slots.reserve():
            try:
                conn = await slots.wait()
            except PoolClosed as exc:
                raise UpstreamConnectError("the upstream pool is closed") from exc
        if conn is not None:
            try:
                return await self._exchange(conn, head, body, head_only)
            except UpstreamDisconnected:
                if conn.got_bytes:
                    self.discard(conn)
                    raise
                # The upstream had closed this idle connection: resend once on a fresh one
                # (in the same slot).
                self._conns.discard(conn)
                conn.abort()
            except BaseException:
                self.discard(conn)
                raise
        conn = await self._connect()
        try:
            return await self._exchange(conn, head, body, head_only)
        except BaseException:
            self.discard(conn)
            raise

    async def connect_raw(
        self, factory: Callable[[], asyncio.Protocol]
    ) -> tuple[asyncio.Transport, asyncio.Protocol]:
        """A connection of its own to this origin (TLS as the pool's), outside the pool and
        its limit, for a protocol that takes it over for good (a WebSocket session)."""
        if self._closed:
            raise UpstreamConnectError("the upstream pool is closed")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                transport, protocol = await loop.create_connection(
                    factory,
                    self._host,
                    self._port,
                    ssl=self._tls.context() if self._tls else None,
                    server_hostname=self._server_hostname,
                )
        except TimeoutError as exc:
            raise UpstreamConnectError(
                f"connecting to {self._origin} timed out after {self._connect_timeout:g} s"
            ) from exc
        except OSError as exc:
            raise UpstreamConnectError(f"cannot connect to {self._origin}: {exc}") from exc
        return transport, protocol

    async def close(self) -> None:
        """Close idle and in-use connections; later requests raise UpstreamConnectError."""
        if self._closed:
            return
        self._closed = True
        for conn in self._slots.close():
            self._expired(conn)
        for conn in list(self._conns):
            conn.abort()
        await asyncio.sleep(0)

    # For UpstreamResponse: the end of a connection's turn.

    def give_back(self, conn: UpstreamConnection) -> None:
        """Keep `conn` for the next request if its response ended and it is keep-alive,
        else close it."""
        if conn.reusable() and not self._closed:
            conn.idle()
            self._slots.put(conn)
        else:
            self.discard(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        """Close `conn` (abort unless its response was read to the end), free its slot;
        idempotent."""
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        conn.close()
        self._slots.free()

    async def _exchange(
        self, conn: UpstreamConnection, head: bytes, body: bytes, head_only: bool
    ) -> UpstreamResponse:
        conn.send(head, body, head_only)
        while not conn.head_received:
            if conn.error is not None:
                raise conn.error
            await conn.wait(self.read_timeout)
        return UpstreamResponse(conn, self)

    async def _connect(self) -> UpstreamConnection:
        """A new connection in a slot already reserved (freed again on failure)."""
        assert self._loop is not None
        try:
            if self._closed:
                raise UpstreamConnectError("the upstream pool is closed")
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await self._loop.create_connection(
                    self._new_connection,
                    self._host,
                    self._port,
                    ssl=self._tls.context() if self._tls else None,
                    server_hostname=self._server_hostname,
                )
        except TimeoutError as exc:
            self._slots.free()
            raise UpstreamConnectError(
                f"connecting to {self._origin} timed out after {self._connect_timeout:g} s"
            ) from exc
        except OSError as exc:
            self._slots.free()
            raise UpstreamConnectError(f"cannot connect to {self._origin}: {exc}") from exc
        except BaseException:
            self._slots.free()
            raise
        self._conns.add(conn)
        if self._closed:
            self.discard(conn)
            raise UpstreamConnectError("the upstream pool is closed")
        return conn

    def _new_connection(self) -> UpstreamConnection:
        assert self._loop is not None
        return UpstreamConnection(self._loop, self._idle_lost)

    def encode_head(
        self, method: str, target: str, headers: CIMultiDict[str], body: bytes
    ) -> bytes:
        """Request line, Host, the caller's headers in order, Content-Length, blank line."""
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
        if body or method in _BODY_METHODS:
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        text = "".join(lines)
        breaks = len(lines) + 1
        if text.count("\n") != breaks or text.count("\r") != breaks:
            raise ValueError("line break in the request line or a header")
        return text.encode("latin-1")

    def _expired(self, conn: UpstreamConnection) -> None:
        """An idle connection the slots have forgotten (slot freed): close it."""
        self._conns.discard(conn)
        conn.close()

    def _idle_lost(self, conn: UpstreamConnection) -> None:
        """A connection closed while idle (the peer closed it, or it was dropped): forget it."""
        if self._slots.remove_idle(conn):
            self._conns.discard(conn)
