"""Writing a reply: pacing, gzip, stalls, dropped connections, and noticing a client leave."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Protocol

from aiohttp import web

from sidecar.simulate.call import Call

# How often a pause looks whether the client has closed its connection.
_POLL_S = 0.02


class StreamEnded(Exception):
    """The reply cannot go on: the client left, or the simulator dropped the connection."""


def sse(data: bytes, event: bytes | None = None, newline: bytes = b"\n") -> bytes:
    """One Server-Sent Event; Gemini separates events with CRLF, the others with LF."""
    if event is None:
        return b"data: " + data + newline + newline
    return b"event: " + event + newline + b"data: " + data + newline + newline


async def pause(call: Call, seconds: float) -> None:
    """Sleep, but raise StreamEnded as soon as the client's connection is gone."""
    if seconds <= 0:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    request = call.request
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            call.client_left()
            raise StreamEnded("client disconnected")
        left = deadline - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(left, _POLL_S))


class _Compressor(Protocol):
    """What `zlib.compressobj()` returns (its class is not public)."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self, mode: int = ..., /) -> bytes: ...


class Responder:
    """Sends one reply, whole (`send_body`) or as a stream (`start`, `event`, `chunk`, `finish`)."""

    def __init__(self, call: Call, headers: dict[str, str]) -> None:
        self.call = call
        self.headers = headers
        self.chunks_sent = 0
        self._paced = 0
        self._gzip: _Compressor | None = None

    async def send_body(
        self, body: bytes, content_type: str, chunks: int = 1
    ) -> web.StreamResponse:
        """Reply with a whole body after the time generating `chunks` chunks would take."""
        call = self.call
        await pause(call, call.ttft_s + call.chunk_interval_s * max(0, chunks - 1))
        controls = call.controls
        if controls.gzip:
            body = gzip.compress(body, compresslevel=5, mtime=0)
            self.headers["Content-Encoding"] = "gzip"
        self.headers["Content-Type"] = content_type
        interrupted = controls.drop_after_chunks is not None or controls.stall_mid_stream_s > 0
        if not interrupted:
            whole = web.Response(body=body, headers=self.headers)
            call.response = whole
            return whole
        # Send the first half, then stall or drop as asked.
        response = web.StreamResponse(headers=self.headers)
        response.content_length = len(body)
        await self._prepare(response)
        half = len(body) // 2
        await self._write(body[:half])
        await pause(call, controls.stall_mid_stream_s)
        if controls.drop_after_chunks is not None:
            self._drop()
        await self._write(body[half:])
        await response.write_eof()
        return response

    async def start(self, content_type: str) -> None:
        """Send the status line and headers of a stream."""
        if self.call.controls.gzip:
            self.headers["Content-Encoding"] = "gzip"
            self._gzip = zlib.compressobj(5, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self.headers["Content-Type"] = content_type
        self.headers["Cache-Control"] = "no-cache"
        await self._prepare(web.StreamResponse(headers=self.headers))

    async def event(self, data: bytes) -> None:
        """Send an event that carries no output (a preamble, a ping, a usage trailer)."""
        await self._write(data)

    async def chunk(self, data: bytes, output: bool = True) -> None:
        """Send a chunk when it is due: the first after the TTFT, the rest one interval apart.

        Only `output` chunks (the ones carrying answer text) count for the drop and stall
        controls; an opening event such as OpenAI's role chunk is paced but not counted.
        """
        call = self.call
        if output:
            self._maybe_drop()
        await pause(call, call.ttft_s if self._paced == 0 else call.chunk_interval_s)
        self._paced += 1
        await self._write(data)
        if output:
            self.chunks_sent += 1
            if self.chunks_sent == 1:
                await pause(call, call.controls.stall_mid_stream_s)

    async def finish(self, data: bytes = b"") -> web.StreamResponse:
        """Send the closing events and end the stream cleanly."""
        self._maybe_drop()
        response = self.call.response
        assert response is not None
        if data:
            await self._write(data)
        if self._gzip is not None:
            await response.write(self._gzip.flush(zlib.Z_FINISH))
        await response.write_eof()
        return response

    async def _prepare(self, response: web.StreamResponse) -> None:
        call = self.call
        call.response = response
        await response.prepare(call.request)

    async def _write(self, data: bytes) -> None:
        response = self.call.response
        assert response is not None
        if self._gzip is not None:
            data = self._gzip.compress(data) + self._gzip.flush(zlib.Z_SYNC_FLUSH)
        try:
            await response.write(data)
        except ConnectionError as exc:
            self.call.client_left()
            raise StreamEnded("client disconnected") from exc

    def _maybe_drop(self) -> None:
        drop_after = self.call.controls.drop_after_chunks
        if drop_after is not None and self.chunks_sent >= drop_after:
            self._drop()

    def _drop(self) -> None:
        """Close the connection without ending the body (no chunked terminator is sent)."""
        transport = self.call.request.transport
        if transport is not None:
            transport.close()
        raise StreamEnded("connection dropped by the simulator")
