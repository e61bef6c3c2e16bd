"""Encoding AWS event-stream frames, as Amazon Bedrock sends them (botocore only decodes)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from uuid import UUID

from sidecar.protocols.eventstream import MIN_MESSAGE_LENGTH, HeaderType, HeaderValue

# (name, type, value): the type says how an int is sent (BYTE ... LONG, TIMESTAMP).
Header = tuple[str, HeaderType, HeaderValue]

_PRELUDE = struct.Struct("!II")
_U32 = struct.Struct("!I")
_INTS = {
    HeaderType.BYTE: struct.Struct("!b"),
    HeaderType.SHORT: struct.Struct("!h"),
    HeaderType.INTEGER: struct.Struct("!i"),
    HeaderType.LONG: struct.Struct("!q"),
    HeaderType.TIMESTAMP: struct.Struct("!q"),
}
JSON = "application/json"


def encode_headers(headers: Iterable[Header]) -> bytes:
    """The header block of a frame; ValueError when a value does not fit its type."""
    out = bytearray()
    for name, kind, value in headers:
        raw_name = name.encode("utf-8")
        if not 0 < len(raw_name) < 256:
            raise ValueError(f"header name {name!r} must be 1-255 bytes")
        out += bytes((len(raw_name),)) + raw_name
        if kind in (HeaderType.TRUE, HeaderType.FALSE):
            out.append(HeaderType.TRUE if value else HeaderType.FALSE)
        elif kind in _INTS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"header {name!r} needs an int")
            try:
                out += bytes((kind,)) + _INTS[kind].pack(value)
            except struct.error as exc:
                raise ValueError(f"header {name!r}: {exc}") from None
        elif kind in (HeaderType.STRING, HeaderType.BYTE_ARRAY):
            if isinstance(value, str):
                raw = value.encode("utf-8")
            elif isinstance(value, bytes):
                raw = value
            else:
                raise ValueError(f"header {name!r} needs str or bytes")
            if len(raw) > 0xFFFF:
                raise ValueError(f"header {name!r} is longer than 65535 bytes")
            out += bytes((kind,)) + struct.pack("!H", len(raw)) + raw
        elif kind == HeaderType.UUID:
            if not isinstance(value, UUID):
                raise ValueError(f"header {name!r} needs a UUID")
            out += bytes((kind,)) + value.bytes
        else:
            raise ValueError(f"header {name!r} has unknown type {kind}")
    return bytes(out)


def encode_frame(header_block: bytes, payload: bytes) -> bytes:
    """One whole frame: prelude, its CRC, headers, payload, message CRC."""
    prelude = _PRELUDE.pack(
        MIN_MESSAGE_LENGTH + len(header_block) + len(payload), len(header_block)
    )
    prelude += _U32.pack(zlib.crc32(prelude))
    crc = zlib.crc32(payload, zlib.crc32(header_block, zlib.crc32(prelude)))
    return prelude + header_block + payload + _U32.pack(crc)


def event_headers(event_type: str, content_type: str = JSON) -> bytes:
    """The header block of an event, in the order Bedrock sends its three headers."""
    return encode_headers(
        [
            (":event-type", HeaderType.STRING, event_type),
            (":content-type", HeaderType.STRING, content_type),
            (":message-type", HeaderType.STRING, "event"),
        ]
    )


def exception_headers(exception_type: str, content_type: str = JSON) -> bytes:
    """The header block of a modelled exception sent inside a stream."""
    return encode_headers(
        [
            (":exception-type", HeaderType.STRING, exception_type),
            (":content-type", HeaderType.STRING, content_type),
            (":message-type", HeaderType.STRING, "exception"),
        ]
    )
