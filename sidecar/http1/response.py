"""An upstream response: its head, and its body read as it arrives."""

from __future__ import annotations

from typing import Protocol

from multidict import CIMultiDict

from sidecar.http1.errors import UpstreamPayloadError
from sidecar.http1.upstream import UpstreamConnection


class ConnectionOwner(Protocol):
    """What a response needs from the pool its connection belongs to."""

    @property
    def read_timeout(self) -> float:
        """Seconds to wait for the next body bytes."""

    def give_back(self, conn: UpstreamConnection) -> None:
        """The response is done with `conn`: keep it for reuse if it may carry another request."""

    def discard(self, conn: UpstreamConnection) -> None:
        """Close `conn` and free its slot."""


class UpstreamResponse:
    """A response whose head arrived; the body is read with read_chunk() / read()."""

    __slots__ = ("_conn", "_end", "_pool", "content_length", "headers", "reason", "status")

    def __init__(self, conn: UpstreamConnection, pool: ConnectionOwner) -> None:
        self._conn: UpstreamConnection | None = conn
        self._pool = pool
        self._end: BaseException | None = None
        self.status: int = conn.status
        self.reason: str = conn.reason.decode("latin-1")
        headers = conn.headers
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
            if conn.buffered:
                return conn.take()
            error = conn.error
            if error is not None:
                self._conn = None
                self._end = error
                self._pool.discard(conn)
                raise error
            if conn.ended:
                self.release()
                return b""
            await conn.wait(self._pool.read_timeout)

    def read_nowait(self) -> bytes:
        """Body bytes already received (de-chunked), without waiting; b"" when none are."""
        conn = self._conn
        return conn.take() if conn is not None and conn.buffered else b""

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
        if not conn.ended:
            self._end = UpstreamPayloadError("the response was released before its end")
        self._pool.give_back(conn)

    def close(self) -> None:
        """Close the connection now (abort the body)."""
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        if not conn.ended or conn.buffered:
            self._end = UpstreamPayloadError("the response was closed before its end")
        self._pool.discard(conn)
