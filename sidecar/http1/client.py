"""Upstream HTTP/1.1 client: UpstreamPool (keep-alive connections to one origin), responses."""

from __future__ import annotations

import asyncio
import ssl

from multidict import CIMultiDict

from sidecar.http1.errors import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamPayloadError,
)
from sidecar.http1.upstream import ConnectionSlots, PoolClosed, UpstreamConnection

__all__ = [
    "UpstreamConnectError",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamPayloadError",
    "UpstreamPool",
    "UpstreamResponse",
]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UpstreamResponse:
    """A response whose head arrived; the body is read with read_chunk() / read()."""

    __slots__ = ("_conn", "_end", "_pool", "content_length", "headers", "reason", "status")

    def __init__(self, conn: UpstreamConnection, pool: UpstreamPool) -> None:
        self._conn: UpstreamConnection | None = conn
        self._pool = pool
        self._end: BaseException | None = None
        self.status: int = conn._status
        self.reason: str = conn._reason.decode("latin-1")
        headers = conn._headers
        self.headers: CIMultiDict[str] = headers
        length = headers.get("Content-Length")
        self.content_length: int | None = None
        if length is not None and length.isdecimal() and "Transfer-Encoding" not in headers:
            self.content_length = int(length)

    async def read_chunk(self) -> bytes:
        """The next body bytes as they arrived (de-chunked), b"" at the end."""
        conn = self._conn
        if conn is None:
            if self._end is not None:
                raise self._end
            return b""
        while True:
            if conn._buf:
                return conn.take()
            error = conn._error
            if error is not None:
                self._conn = None
                self._end = error
                self._pool._drop(conn)
                raise error
            if conn._done:
                self.release()
                return b""
            await conn.wait(self._pool._read_timeout)

    def read_nowait(self) -> bytes:
        """Body bytes already received (de-chunked), without waiting; b"" when none are."""
        conn = self._conn
        return conn.take() if conn is not None and conn._buf else b""

    async def read(self) -> bytes:
        """The whole remaining body."""
        chunks = []
        while chunk := await self.read_chunk():
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def release(self) -> None:
        """Done: the connection goes back to the pool if the body ended and it is keep-alive."""
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        if conn.reusable() and not self._pool._closed:
            conn.idle()
            self._pool._slots.put(conn)
            return
        if not conn._done:
            self._end = UpstreamPayloadError("the response was released before its end")
        self._pool._drop(conn)

    def close(self) -> None:
        """Close the connection now (abort the body)."""
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        if not conn._done or conn._buf:
            self._end = UpstreamPayloadError("the response was closed before its end")
        self._pool._drop(conn)


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
    ) -> None:
        self._host = host
        self._port = port
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ssl: ssl.SSLContext | None = None
        if tls:
            self._ssl = ssl_context or ssl.create_default_context()
        self._server_hostname = host if tls else None
        name = f"[{host}]" if ":" in host else host
        self._host_header = name if port == (443 if tls else 80) else f"{name}:{port}"
        self._origin = f"{'https' if tls else 'http'}://{name}:{port}"
        self._slots: ConnectionSlots[UpstreamConnection] = ConnectionSlots(
            max_connections, idle_timeout
        )
        self._conns: set[UpstreamConnection] = set()
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
        head = self._encode(method, target, headers, body)
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
                if conn._got_bytes:
                    self._drop(conn)
                    raise
                # The upstream had closed this idle connection: resend once on a fresh one.
                conn._dropped = True
                self._conns.discard(conn)
                conn._transport.abort()
            except BaseException:
                self._drop(conn)
                raise
        conn = await self._connect()
        try:
            return await self._exchange(conn, head, body, head_only)
        except BaseException:
            self._drop(conn)
            raise

    async def close(self) -> None:
        """Close idle and in-use connections; later requests raise UpstreamConnectError."""
        if self._closed:
            return
        self._closed = True
        for conn in self._slots.close():
            conn.discard()
        for conn in list(self._conns):
            conn._transport.abort()
        await asyncio.sleep(0)

    async def _exchange(
        self, conn: UpstreamConnection, head: bytes, body: bytes, head_only: bool
    ) -> UpstreamResponse:
        conn.send(head, body, head_only)
        while not conn._head:
            if conn._error is not None:
                raise conn._error
            await conn.wait(self._read_timeout)
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
                    ssl=self._ssl,
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
        if self._closed:
            self._drop(conn)
            raise UpstreamConnectError("the upstream pool is closed")
        self._conns.add(conn)
        return conn

    def _new_connection(self) -> UpstreamConnection:
        return UpstreamConnection(self)

    def _encode(self, method: str, target: str, headers: CIMultiDict[str], body: bytes) -> bytes:
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

    def _drop(self, conn: UpstreamConnection) -> None:
        """Close a connection (abort if busy) and free its slot; idempotent."""
        if conn._dropped:
            return
        conn._dropped = True
        self._conns.discard(conn)
        if conn._done and not conn._buf:
            conn._transport.close()
        else:
            conn._transport.abort()
        self._slots.free()

    def _idle_lost(self, conn: UpstreamConnection) -> bool:
        """An idle connection was closed by the peer: forget it (False if it was not idle)."""
        if self._slots.remove_idle(conn):
            self._conns.discard(conn)
            return True
        return False
