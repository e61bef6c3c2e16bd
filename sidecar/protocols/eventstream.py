"""Incremental decoding of the AWS event-stream framing (`application/vnd.amazon.eventstream`).

Amazon Bedrock streams (ConverseStream, InvokeModelWithResponseStream) arrive as binary
frames, each one message:

    total length (u32) | headers length (u32) | prelude CRC32 (u32)
    headers: name length (u8), name (UTF-8), type (u8), value — repeated
    payload
    message CRC32 (u32, over everything before it)

All integers are big-endian. `EventStreamDecoder.feed` takes bytes as they arrive, in any
split, and returns the messages they complete; it holds at most one partial frame.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType
from typing import NamedTuple
from uuid import UUID

PRELUDE_LENGTH = 12
# The prelude plus the message CRC: a message with no headers and no payload.
MIN_MESSAGE_LENGTH = PRELUDE_LENGTH + 4
# botocore's limits (botocore/eventstream.py); a prelude beyond them is garbage or hostile.
MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024
MAX_MESSAGE_LENGTH = MIN_MESSAGE_LENGTH + MAX_HEADERS_LENGTH + MAX_PAYLOAD_LENGTH

_PRELUDE = struct.Struct("!III")
_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_I8 = struct.Struct("!b")
_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_I64 = struct.Struct("!q")
# Distinct header blocks remembered per decoder: a stream repeats the same few blocks.
_HEADER_CACHE_SIZE = 64


class HeaderType(IntEnum):
    """The type byte of a header value."""

    TRUE = 0
    FALSE = 1
    BYTE = 2
    SHORT = 3
    INTEGER = 4
    LONG = 5
    BYTE_ARRAY = 6
    STRING = 7
    TIMESTAMP = 8  # milliseconds since the epoch, as a signed 64-bit integer
    UUID = 9


# bool (TRUE/FALSE), int (BYTE, SHORT, INTEGER, LONG, TIMESTAMP), bytes, str, UUID.
HeaderValue = bool | int | bytes | str | UUID
Headers = Mapping[str, HeaderValue]


class EventStreamError(ValueError):
    """The bytes are not a valid event stream: a CRC mismatch, an absurd length, bad headers.

    The stream cannot be resynchronised after one: treat it as broken. `messages` holds the
    valid messages the same `feed` call completed before the bad frame.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.messages: list[Message] = []


class Message(NamedTuple):
    """One decoded event-stream message."""

    headers: Headers
    payload: bytes

    def header(self, name: str) -> str | None:
        """A string header's value, None when absent or not a string."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else None

    @property
    def message_type(self) -> str | None:
        """`:message-type`: "event", "exception" or "error"."""
        return self.header(":message-type")

    @property
    def event_type(self) -> str | None:
        """`:event-type` of an event, e.g. "chunk", "contentBlockDelta", "metadata"."""
        return self.header(":event-type")

    @property
    def exception_type(self) -> str | None:
        """`:exception-type` of an exception message, e.g. "throttlingException"."""
        return self.header(":exception-type")


class EventStreamDecoder:
    """Splits a byte stream into event-stream messages, checking both CRCs of each frame."""

    __slots__ = ("_broken", "_header_cache", "_max_message_length", "_partial")

    def __init__(self, max_message_length: int = MAX_MESSAGE_LENGTH) -> None:
        self._partial = bytearray()
        self._broken: EventStreamError | None = None
        self._header_cache: dict[bytes, Headers] = {}
        self._max_message_length = max_message_length

    @property
    def pending(self) -> bool:
        """True while part of a frame is held: a stream that ends now was cut mid-frame."""
        return bool(self._partial)

    @property
    def buffered(self) -> int:
        """Bytes of the partial frame held."""
        return len(self._partial)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """The messages completed by `data`; EventStreamError (again on every later call) if
        the stream is broken."""
        if self._broken is not None:
            raise EventStreamError(f"the event stream is already broken: {self._broken}")
        messages: list[Message] = []
        try:
            self._feed(data, messages)
        except EventStreamError as exc:
            exc.messages = messages
            self._fail(exc)
            raise
        return messages

    def end(self) -> None:
        """Declare the stream finished; EventStreamError if it stopped inside a frame."""
        if self._broken is not None:
            raise EventStreamError(f"the event stream is already broken: {self._broken}")
        if self._partial:
            error = EventStreamError(
                f"event stream cut mid-frame: {len(self._partial)} bytes of a frame are missing "
                "their end"
            )
            self._fail(error)
            raise error

    def _fail(self, error: EventStreamError) -> None:
        self._broken = error
        self._partial = bytearray()

    def _feed(self, data: bytes | bytearray | memoryview, messages: list[Message]) -> None:
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        end = len(view)
        start = 0
        partial = self._partial
        if partial:
            # Complete the held frame first, copying in only the bytes it still lacks.
            if len(partial) < PRELUDE_LENGTH:
                start = min(PRELUDE_LENGTH - len(partial), end)
                partial += view[:start]
                if len(partial) < PRELUDE_LENGTH:
                    return
            with memoryview(partial) as held:
                total = self._check_prelude(held, 0)
            take = min(total - len(partial), end - start)
            partial += view[start : start + take]
            start += take
            if len(partial) < total:
                return
            with memoryview(partial) as held:
                self._frames(held, 0, messages)
            partial.clear()
        # Then whole frames straight from the caller's buffer, without copying it.
        start = self._frames(view, start, messages)
        if start < end:
            partial += view[start:end]

    def _frames(self, view: memoryview, start: int, out: list[Message]) -> int:
        """Append every whole frame of `view` from `start` on; the offset of what is left."""
        # The hot path: locals, one pass per frame, the slow checks only when one fails.
        end = len(view)
        crc32 = zlib.crc32
        unpack_prelude = _PRELUDE.unpack_from
        unpack_u32 = _U32.unpack_from
        limit = self._max_message_length
        cache = self._header_cache
        append = out.append
        while end - start >= PRELUDE_LENGTH:
            total, headers_length, crc = unpack_prelude(view, start)
            if (
                crc32(view[start : start + 8]) != crc
                or not MIN_MESSAGE_LENGTH <= total <= limit
                or headers_length > total - MIN_MESSAGE_LENGTH
                or headers_length > MAX_HEADERS_LENGTH
            ):
                self._check_prelude(view, start)
            if end - start < total:
                break
            payload_end = start + total - 4
            (crc,) = unpack_u32(view, payload_end)
            actual = crc32(view[start:payload_end])
            if actual != crc:
                raise EventStreamError(
                    f"event-stream message CRC mismatch: frame says 0x{crc:08x}, "
                    f"bytes give 0x{actual:08x}"
                )
            headers_end = start + PRELUDE_LENGTH + headers_length
            block = view[start + PRELUDE_LENGTH : headers_end].tobytes()
            headers = cache.get(block)
            if headers is None:
                if len(cache) >= _HEADER_CACHE_SIZE:
                    cache.clear()
                headers = cache[block] = MappingProxyType(parse_headers(block))
            append(Message(headers, view[headers_end:payload_end].tobytes()))
            start += total
        return start

    def _check_prelude(self, view: memoryview, offset: int) -> int:
        """The total length of the frame at `offset`; EventStreamError naming what is wrong."""
        total, headers_length, crc = _PRELUDE.unpack_from(view, offset)
        actual = zlib.crc32(view[offset : offset + 8])
        if actual != crc:
            raise EventStreamError(
                f"event-stream prelude CRC mismatch: frame says 0x{crc:08x}, "
                f"bytes give 0x{actual:08x}"
            )
        if not MIN_MESSAGE_LENGTH <= total <= self._max_message_length:
            raise EventStreamError(
                f"event-stream frame length {total} is outside "
                f"{MIN_MESSAGE_LENGTH}..{self._max_message_length}"
            )
        if headers_length > MAX_HEADERS_LENGTH or headers_length > total - MIN_MESSAGE_LENGTH:
            raise EventStreamError(
                f"event-stream headers length {headers_length} does not fit a frame of {total}"
            )
        return int(total)


def parse_headers(block: bytes) -> dict[str, HeaderValue]:
    """The headers encoded in `block`; EventStreamError when it is malformed."""
    try:
        return _parse_headers(block)
    except (struct.error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        if isinstance(exc, EventStreamError):
            raise
        raise EventStreamError(f"malformed event-stream headers: {exc}") from None


def _parse_headers(block: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    size = len(block)
    pos = 0
    while pos < size:
        name_end = pos + 1 + block[pos]
        if name_end >= size:
            raise EventStreamError("event-stream header name runs past the header block")
        name = block[pos + 1 : name_end].decode("utf-8")
        kind = block[name_end]
        pos = name_end + 1
        value: HeaderValue
        if kind == HeaderType.STRING or kind == HeaderType.BYTE_ARRAY:
            (length,) = _U16.unpack_from(block, pos)
            pos += 2 + length
            raw = block[pos - length : pos]
            value = raw.decode("utf-8") if kind == HeaderType.STRING else raw
        elif kind == HeaderType.TRUE:
            value = True
        elif kind == HeaderType.FALSE:
            value = False
        elif kind == HeaderType.BYTE:
            (value,) = _I8.unpack_from(block, pos)
            pos += 1
        elif kind == HeaderType.SHORT:
            (value,) = _I16.unpack_from(block, pos)
            pos += 2
        elif kind == HeaderType.INTEGER:
            (value,) = _I32.unpack_from(block, pos)
            pos += 4
        elif kind == HeaderType.LONG or kind == HeaderType.TIMESTAMP:
            (value,) = _I64.unpack_from(block, pos)
            pos += 8
        elif kind == HeaderType.UUID:
            value = UUID(bytes=block[pos : pos + 16])
            pos += 16
        else:
            raise EventStreamError(f"event-stream header {name!r} has unknown type {kind}")
        if pos > size:
            raise EventStreamError(f"event-stream header {name!r} runs past the header block")
        if name in headers:
            raise EventStreamError(f"event-stream header {name!r} appears twice")
        headers[name] = value
    return headers
