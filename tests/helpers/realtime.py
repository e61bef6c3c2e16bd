"""OpenAI Realtime sessions for tests: reading events off the SDK's connection or a plain
`websockets` client, WebSocket frames built by hand, and a raw upstream that answers an
upgrade and then keeps every byte (for byte-for-byte checks below the simulator's library)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from sidecar.protocols.websocket_frames import unmask

# RFC 6455 §1.3: the GUID the accept key is hashed with.
WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OUTPUT_DELTAS = ("response.output_text.delta", "response.output_audio.delta")


def accept_key(key: str) -> str:
    """The `Sec-WebSocket-Accept` answering `Sec-WebSocket-Key: key`."""
    return base64.b64encode(hashlib.sha1(key.encode() + WEBSOCKET_GUID).digest()).decode()


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None, rsv: int = 0
) -> bytes:
    """One WebSocket frame exactly as RFC 6455 §5.2 lays it out (masked when `mask` is given)."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    bit = 0x80 if mask else 0
    size = len(payload)
    if size < 126:
        head = bytes([first, bit | size])
    elif size < 65536:
        head = bytes([first, bit | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, bit | 127]) + size.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + unmask(payload, mask, 0)


def kind(raw: bytes | str) -> str:
    """An event's type."""
    return str(orjson.loads(raw)["type"])


@dataclass
class Turn:
    """One response as the app saw it: every message it read, when it asked, when the first
    output delta came (time.perf_counter()), and the response.done event."""

    messages: list[bytes] = field(default_factory=list)
    asked: float = 0.0
    first_output: float | None = None
    done: dict[str, Any] = field(default_factory=dict)

    @property
    def time_to_first_output(self) -> float:
        assert self.first_output is not None
        return self.first_output - self.asked

    @property
    def usage(self) -> dict[str, Any]:
        return dict(self.done["response"]["usage"])


async def sdk_turn(connection: Any, text: str | None, **response: Any) -> Turn:
    """With the openai SDK's Realtime connection: add a user message (when `text`), ask for a
    response, read every message up to and including its `response.done`."""
    if text is not None:
        content = [{"type": "input_text", "text": text}]
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": content}
        )
    turn = Turn(asked=time.perf_counter())
    await connection.response.create(**({"response": response} if response else {}))
    while True:
        raw = await connection.recv_bytes()
        now = time.perf_counter()
        turn.messages.append(raw)
        event = orjson.loads(raw)
        if event["type"] in OUTPUT_DELTAS and turn.first_output is None:
            turn.first_output = now
        if event["type"] == "response.done":
            turn.done = event
            return turn


async def read_until(connection: Any, wanted: str) -> list[bytes]:
    """Messages read off an SDK connection up to and including the first of type `wanted`."""
    messages = []
    while True:
        raw = await connection.recv_bytes()
        messages.append(raw)
        if kind(raw) == wanted:
            return messages


async def ws_until(ws: Any, wanted: str) -> list[bytes]:
    """The same with a plain `websockets` client."""
    messages = []
    while True:
        raw = await ws.recv(decode=False)
        messages.append(raw)
        if kind(raw) == wanted:
            return messages


@dataclass
class RawSession:
    """One connection the raw upstream accepted: the upgrade request's head, every byte after
    it, and its streams."""

    head: bytes
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    received: bytearray = field(default_factory=bytearray)
    ended: float | None = None  # time.monotonic() when the sidecar's side closed

    def header(self, name: str) -> str | None:
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    async def wait_for(self, size: int, timeout: float = 5.0) -> bytes:
        """The bytes received once there are at least `size`."""
        async with asyncio.timeout(timeout):
            while len(self.received) < size:
                await asyncio.sleep(0.005)
        return bytes(self.received)


class RawUpstream:
    """A TCP server that answers each upgrade with a 101 (and `first`, sent in the same write)
    and then keeps every byte it receives."""

    def __init__(self, first: bytes = b"", extra_headers: str = "") -> None:
        self.first = first
        self.extra_headers = extra_headers
        self.sessions: list[RawSession] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def session(self, timeout: float = 5.0) -> RawSession:
        async with asyncio.timeout(timeout):
            while not self.sessions:
                await asyncio.sleep(0.005)
        return self.sessions[-1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        session = RawSession(head, reader, writer)
        key = session.header("Sec-WebSocket-Key") or ""
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n{self.extra_headers}\r\n".encode()
            + self.first
        )
        self.sessions.append(session)
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                session.received += data
        session.ended = time.monotonic()
        writer.close()

    def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RawUpstream]:
        self._server = await asyncio.start_server(self._track, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
