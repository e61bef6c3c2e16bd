"""SSE decoding and the small shared helpers every protocol parser builds on."""

from __future__ import annotations

import gzip
import zlib

import pytest

from sidecar.protocols.decoding import ContentDecoder
from sidecar.protocols.jsonfields import dig, event_type, is_event_stream, json_object_end
from sidecar.protocols.parsers import FinishReasons
from sidecar.protocols.sse import SSEDecoder
from sidecar.record import CallRecord
from tests.helpers.wire import split

STREAM = (
    b": OPENROUTER PROCESSING\n\n"
    b"event: message_start\n"
    b'data: {"type":"message_start"}\n\n'
    b"data:no-space\n\n"
    b"id: 7\n"
    b"retry: 3000\n"
    b"data: line one\n"
    b"data: line two\n\n"
    b"event: ping\n\n"
    b"data: [DONE]\n\n"
)
EVENTS = [
    (b"message_start", b'{"type":"message_start"}'),
    (None, b"no-space"),
    (None, b"line one\nline two"),
    (b"ping", b""),
    (None, b"[DONE]"),
]


def decode(pieces: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    decoder = SSEDecoder()
    return [event for piece in pieces for event in decoder.feed(piece)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 1000])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_events_survive_any_split_and_line_ending(size: int, newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    assert decode(split(stream, size)) == EVENTS


def test_crlf_split_between_cr_and_lf() -> None:
    assert decode([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]) == [(None, b"a"), (None, b"b")]


def test_partial_event_is_held_until_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert list(decoder.feed(b'data: {"a":')) == []
    assert list(decoder.feed(b"1}\n")) == []
    assert list(decoder.feed(b"\n")) == [(None, b'{"a":1}')]


def test_event_type_prefers_the_event_line() -> None:
    assert event_type(b"message_stop", b'{"type":"other"}') == b"message_stop"
    assert event_type(None, b'{"type": "content_block_delta","index":0}') == b"content_block_delta"
    assert event_type(None, b"[DONE]") == b""


def test_json_object_end_skips_braces_in_strings() -> None:
    data = b'x{"a":{"b":"}\\"{"},"c":[1]}tail'
    assert data[json_object_end(data, 1) :] == b"tail"
    assert json_object_end(b'{"a":{"b":1}', 0) == -1


def test_dig_through_anything() -> None:
    assert dig({"a": {"b": 3}}, "a", "b") == 3
    assert dig({"a": [1]}, "a", "b") is None
    assert dig(None, "a") is None
    assert dig("text", "a") is None


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/event-stream", True),
        ("text/event-stream; charset=utf-8", True),
        ("Text/Event-Stream", True),
        ("application/json", False),
        ("", False),
    ],
)
def test_is_event_stream(content_type: str, expected: bool) -> None:
    assert is_event_stream(content_type) is expected


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_content_decoder_in_pieces(encoding: str) -> None:
    body = b'{"usage":{"prompt_tokens":5}}' * 100
    compressed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    decoder = ContentDecoder(encoding)
    assert b"".join(decoder.decode(piece) for piece in split(compressed, 3)) == body


def test_content_decoder_gives_up_on_garbage() -> None:
    decoder = ContentDecoder("gzip")
    assert decoder.decode(b"this is not gzip") == b""
    assert decoder.decode(b"more") == b"more"  # later pieces pass as they are


def test_finish_reasons_by_index() -> None:
    record = CallRecord(
        upstream="u",
        protocol="openai",
        provider_name="openai",
        method="POST",
        path="/",
        server_address="h",
        server_port=1,
    )
    reasons = FinishReasons(record)
    reasons.add(2, "length")
    reasons.add(None, "stop")
    reasons.add(1, None)
    reasons.add(1, "")
    reasons.add("1", "tool_calls")  # not an int: counted as index 0
    assert record.finish_reasons == ["tool_calls", "length"]
    assert len(reasons) == 2


def test_one_event_pieces_decode_as_when_split() -> None:
    """A piece holding exactly one `data:` event takes a shortcut (issue #23); it must give
    what the general path gives for the same bytes split anywhere."""
    pieces = [
        b'data: {"a":1}\n\n',
        b"data: [DONE]\n\n",
        b"data:  two spaces\n\n",
        b"data: a\rb\n\n",  # a CR is a line end: two lines
        b"data: x\ndata: y\n\n",  # two data lines
        b"data: \n\n",
        b"event: e\ndata: z\n\n",
    ]
    for piece in pieces:
        whole = list(SSEDecoder().feed(piece))
        split = SSEDecoder()
        parts = [*split.feed(piece[:3]), *split.feed(piece[3:])]
        assert whole == parts, piece
    decoder = SSEDecoder()
    assert list(decoder.feed(b'data: {"a":1}\n\n')) == [(None, b'{"a":1}')]
    assert list(decoder.feed(b"data: a\rb\n\n")) == [(None, b"a")]  # "b" is no field
