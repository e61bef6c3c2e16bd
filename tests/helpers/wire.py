"""Feeding realistic wire bytes to the protocol parsers in awkward pieces."""

from __future__ import annotations

import gzip
from typing import Any

from sidecar.protocols.interface import WireProtocol
from sidecar.protocols.parsers import ResponseParser
from sidecar.record import CallOptions, CallRecord

# Ways a body can reach the parser: all must give the same record.
WAYS = ("whole", "bytewise", "pieces", "crlf", "gzip")


def split(data: bytes, size: int) -> list[bytes]:
    """`data` in pieces of `size` bytes (cutting lines, JSON and UTF-8 anywhere)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def pieces(data: bytes, way: str) -> tuple[list[bytes], str]:
    """(pieces, Content-Encoding) for sending `data` the given way."""
    if way == "whole":
        return [data], ""
    if way == "bytewise":
        return split(data, 1), ""
    if way == "pieces":
        return split(data, 7), ""
    if way == "crlf":
        # JSON never holds a raw LF, so only the SSE framing changes.
        return split(data.replace(b"\n", b"\r\n"), 5), ""
    if way == "gzip":
        return split(gzip.compress(data), 11), "gzip"
    raise ValueError(way)


def new_record(
    protocol: WireProtocol,
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    status: int = 200,
    capture: bool = False,
) -> CallRecord:
    """A record as the proxy makes it: classified request, status set before parsing."""
    return CallRecord(
        upstream=protocol.name,
        protocol=protocol.name,
        provider_name=protocol.provider_name,
        method=method,
        path=path,
        server_address="api.example.com",
        server_port=443,
        request=protocol.classify(method, path, "", body),
        http_status=status,
        options=CallOptions(keep_output=capture),
    )


def parse(
    protocol: WireProtocol,
    record: CallRecord,
    content_type: str,
    data: bytes,
    way: str = "whole",
) -> ResponseParser:
    """Feed `data` the given way (piece i arrives at time i) and finish the parser."""
    chunks, encoding = pieces(data, way)
    parser = protocol.response_parser(record, content_type, encoding)
    for index, chunk in enumerate(chunks):
        parser.feed(chunk, float(index))
    parser.finish()
    return parser


def sse(*events: bytes) -> bytes:
    """Events joined as a stream (each event given with its own trailing blank line)."""
    return b"".join(events)
