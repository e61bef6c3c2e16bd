"""WebSocket frames (RFC 6455 §5.2) followed as the bytes of one direction pass by.

The relay forwards every byte as it arrives and never re-frames anything (forward/websocket.py);
this scanner only watches: it finds frame and message boundaries from the 2-14 byte headers,
and of each data message keeps a short head and tail (unmasked) for a cheap look at its type.
A message's whole payload is copied only when the sink asks for it after seeing the head, and
only up to a bound: audio deltas pass without being copied, unmasked or decoded. A byte stream
that is not valid framing stops the scanner (`MessageSink.malformed`), never the relay.

Why not a WebSocket library here: `websockets` reads a frame whole before handing it on, and
`wsproto` decodes text payloads and raises on invalid UTF-8; both would buffer audio or refuse
a frame the relay must pass unchanged. The framing is small and fixed; this follows it.
"""

from __future__ import annotations

from typing import Protocol

CONTINUATION = 0x0
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA
_OPCODES = frozenset((CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG))
# Control frames carry at most this much payload and are never fragmented (§5.5).
MAX_CONTROL_PAYLOAD = 125

HEAD_BYTES = 512
TAIL_BYTES = 256
# A message the sink keeps is dropped (as unreadable) past this size.
KEEP_BYTES = 1 << 20


class MessageSink(Protocol):
    """What a FrameScanner reports."""

    def keep(self, opcode: int, head: bytes) -> bool:
        """Whether the whole message is wanted, decided once from its first bytes."""

    def message(
        self, opcode: int, head: bytes, tail: bytes, body: bytes | None, size: int, now: float
    ) -> None:
        """A complete data message: its first and last bytes, the whole payload when kept
        (None when not kept, or larger than the bound), its size and when it ended."""

    def control(self, opcode: int, payload: bytes, now: float) -> None:
        """A complete Close, Ping or Pong frame."""

    def malformed(self, why: str) -> None:
        """The bytes are not valid WebSocket framing: nothing more is reported."""


def unmask(data: bytes | memoryview, mask: bytes, offset: int) -> bytes:
    """`data` XOR the masking key, for bytes starting `offset` bytes into the payload."""
    size = len(data)
    if not size:
        return b""
    shift = offset % 4
    key = (mask[shift:] + mask[:shift]) * (size // 4 + 1)
    value = int.from_bytes(data, "big") ^ int.from_bytes(key[:size], "big")
    return value.to_bytes(size, "big")


def header_length(second_byte: int) -> int:
    """The length of a frame header from its second byte (extended length, masking key)."""
    length = second_byte & 0x7F
    extended = 2 if length == 126 else 8 if length == 127 else 0
    return 2 + extended + (4 if second_byte & 0x80 else 0)


class FrameScanner:
    """Follows the frames of one direction of a WebSocket connection."""

    __slots__ = (
        "_body",
        "_broken",
        "_control",
        "_fin",
        "_frame_offset",
        "_head",
        "_head_done",
        "_header",
        "_in_message",
        "_mask",
        "_message_opcode",
        "_opcode",
        "_remaining",
        "_sink",
        "_size",
        "_tail",
        "head_bytes",
        "keep_bytes",
        "tail_bytes",
    )

    def __init__(
        self,
        sink: MessageSink,
        *,
        head_bytes: int = HEAD_BYTES,
        tail_bytes: int = TAIL_BYTES,
        keep_bytes: int = KEEP_BYTES,
    ) -> None:
        self._sink = sink
        self.head_bytes = head_bytes
        self.tail_bytes = tail_bytes
        self.keep_bytes = keep_bytes
        self._broken = False
        self._header = bytearray()
        # The frame being read: its opcode, FIN bit, masking key, payload bytes still to
        # come and how many came already.
        self._opcode = 0
        self._fin = False
        self._mask: bytes | None = None
        self._remaining = 0
        self._frame_offset = 0
        self._control = bytearray()
        # The data message being read (it may span several frames).
        self._in_message = False
        self._message_opcode = 0
        self._size = 0
        self._head = bytearray()
        self._head_done = False
        self._tail = b""
        self._body: bytearray | None = None

    @property
    def broken(self) -> bool:
        """The stream stopped being valid framing (nothing is reported any more)."""
        return self._broken

    def feed(self, data: bytes, now: float) -> None:
        """Follow the next bytes of the stream; `now` is when they arrived."""
        if self._broken:
            return
        view = memoryview(data)
        position = 0
        end = len(data)
        while position < end and not self._broken:
            if self._remaining:
                position = self._payload(view, position, end, now)
                continue
            header = self._header
            if not header and end - position >= 2:
                size = header_length(data[position + 1])
                if end - position >= size:
                    self._start_frame(data[position : position + size], now)
                    position += size
                    continue
            needed = 2 if len(header) < 2 else header_length(header[1])
            take = min(needed - len(header), end - position)
            header += view[position : position + take]
            position += take
            if len(header) >= 2 and len(header) == header_length(header[1]):
                self._start_frame(bytes(header), now)
                header.clear()

    def _start_frame(self, header: bytes, now: float) -> None:
        first, second = header[0], header[1]
        opcode = first & 0x0F
        fin = bool(first & 0x80)
        length = second & 0x7F
        position = 2
        if length == 126:
            length = int.from_bytes(header[2:4], "big")
            position = 4
        elif length == 127:
            length = int.from_bytes(header[2:10], "big")
            position = 10
            if length >> 63:
                self._fail("a frame length with its most significant bit set")
                return
        mask = header[position : position + 4] if second & 0x80 else None
        if first & 0x70:
            self._fail("reserved bits set (no extension was negotiated)")
            return
        if opcode not in _OPCODES:
            self._fail(f"reserved opcode {opcode:#x}")
            return
        if opcode >= CLOSE:
            if not fin or length > MAX_CONTROL_PAYLOAD:
                self._fail("a fragmented or oversized control frame")
                return
            self._control.clear()
        elif opcode == CONTINUATION:
            if not self._in_message:
                self._fail("a continuation frame outside a message")
                return
        else:
            if self._in_message:
                self._fail("a new message before the last one ended")
                return
            self._begin_message(opcode)
        self._opcode, self._fin, self._mask = opcode, fin, mask
        self._remaining, self._frame_offset = length, 0
        if not length:
            self._end_frame(now)

    def _begin_message(self, opcode: int) -> None:
        self._in_message = True
        self._message_opcode = opcode
        self._size = 0
        self._head = bytearray()
        self._head_done = False
        self._tail = b""
        self._body = None

    def _payload(self, view: memoryview, start: int, end: int, now: float) -> int:
        """Take the payload bytes of the current frame within view[start:end]."""
        count = min(self._remaining, end - start)
        stop = start + count
        offset = self._frame_offset
        mask = self._mask
        if self._opcode >= CLOSE:
            part = view[start:stop]
            self._control += unmask(part, mask, offset) if mask else part
        else:
            cursor = start
            if not self._head_done:
                take = min(self.head_bytes - len(self._head), count)
                part = view[cursor : cursor + take]
                self._head += unmask(part, mask, offset) if mask else part
                cursor += take
                if len(self._head) >= self.head_bytes:
                    self._decide()
            body = self._body
            if body is not None and cursor < stop:
                part = view[cursor:stop]
                body += unmask(part, mask, offset + cursor - start) if mask else part
                if len(body) > self.keep_bytes:
                    self._body = None
            tail_size = self.tail_bytes
            take = min(tail_size, count)
            part = view[stop - take : stop]
            tail = unmask(part, mask, offset + count - take) if mask else bytes(part)
            self._tail = tail if take >= tail_size else (self._tail + tail)[-tail_size:]
            self._size += count
        self._remaining -= count
        self._frame_offset += count
        if not self._remaining:
            self._end_frame(now)
        return stop

    def _decide(self) -> None:
        self._head_done = True
        if self._sink.keep(self._message_opcode, bytes(self._head)):
            self._body = bytearray(self._head)

    def _end_frame(self, now: float) -> None:
        if self._opcode >= CLOSE:
            self._sink.control(self._opcode, bytes(self._control), now)
            return
        if not self._fin:
            return
        if not self._head_done:
            self._decide()
        body = self._body
        self._in_message = False
        self._sink.message(
            self._message_opcode,
            bytes(self._head),
            self._tail,
            None if body is None else bytes(body),
            self._size,
            now,
        )
        self._body = None

    def _fail(self, why: str) -> None:
        self._broken = True
        self._sink.malformed(why)
