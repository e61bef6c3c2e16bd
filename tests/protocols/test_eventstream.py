"""The incremental event-stream decoder agrees with botocore's own decoder, in any split."""

from __future__ import annotations

import struct
import zlib
from typing import Any
from uuid import UUID

import pytest
from botocore.eventstream import EventStreamBuffer, ParserError
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.protocols.eventstream import (
    MAX_MESSAGE_LENGTH,
    EventStreamDecoder,
    EventStreamError,
    HeaderType,
    Message,
    parse_headers,
)
from sidecar.simulate.eventstream_encode import (
    Header,
    encode_frame,
    encode_headers,
    event_headers,
    exception_headers,
)

# The AWS event-stream specification's "empty_message" test vector: no headers, no payload.
EMPTY_MESSAGE = bytes.fromhex("000000100000000005c248eb7d98c8ff")

_NAMES = st.text(min_size=1, max_size=12)
_VALUES: dict[HeaderType, st.SearchStrategy[Any]] = {
    HeaderType.TRUE: st.just(True),
    HeaderType.FALSE: st.just(False),
    HeaderType.BYTE: st.integers(-(2**7), 2**7 - 1),
    HeaderType.SHORT: st.integers(-(2**15), 2**15 - 1),
    HeaderType.INTEGER: st.integers(-(2**31), 2**31 - 1),
    HeaderType.LONG: st.integers(-(2**63), 2**63 - 1),
    HeaderType.BYTE_ARRAY: st.binary(max_size=40),
    HeaderType.STRING: st.text(max_size=40),
    HeaderType.TIMESTAMP: st.integers(0, 2**62),
    HeaderType.UUID: st.uuids(),
}


@st.composite
def headers(draw: st.DrawFn) -> list[Header]:
    names = draw(st.lists(_NAMES, max_size=6, unique_by=lambda name: name.encode()))
    chosen: list[Header] = []
    for name in names:
        kind = draw(st.sampled_from(list(HeaderType)))
        chosen.append((name, kind, draw(_VALUES[kind])))
    return chosen


frames = st.lists(st.tuples(headers(), st.binary(max_size=300)), min_size=1, max_size=8)


def encode(messages: list[tuple[list[Header], bytes]]) -> bytes:
    return b"".join(encode_frame(encode_headers(h), payload) for h, payload in messages)


def frame_ends(messages: list[tuple[list[Header], bytes]]) -> list[int]:
    """The offset just past each frame of `encode(messages)`."""
    ends = []
    offset = 0
    for h, payload in messages:
        offset += len(encode_frame(encode_headers(h), payload))
        ends.append(offset)
    return ends


def botocore_messages(stream: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(stream)
    return [(message.headers, message.payload) for message in buffer]


def comparable(message: Message) -> tuple[dict[str, Any], bytes]:
    """Our message as botocore reports it (botocore gives a UUID as its 16 raw bytes)."""
    as_botocore = {
        name: value.bytes if isinstance(value, UUID) else value
        for name, value in message.headers.items()
    }
    return as_botocore, message.payload


def feed_in_pieces(stream: bytes, cuts: list[int]) -> tuple[EventStreamDecoder, list[Message]]:
    decoder = EventStreamDecoder()
    messages: list[Message] = []
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        messages += decoder.feed(stream[start:cut])
        start = max(start, cut)
    return decoder, messages


@settings(max_examples=100, deadline=None)
@given(frames, st.lists(st.integers(0, 4000), max_size=12))
def test_any_split_decodes_as_botocore_does(
    messages: list[tuple[list[Header], bytes]], cuts: list[int]
) -> None:
    stream = encode(messages)
    decoder, decoded = feed_in_pieces(stream, [min(cut, len(stream)) for cut in cuts])
    assert [comparable(m) for m in decoded] == botocore_messages(stream)
    assert [m.payload for m in decoded] == [payload for _, payload in messages]
    assert [dict(m.headers) for m in decoded] == [
        {name: value for name, _, value in h} for h, _ in messages
    ]
    assert not decoder.pending
    decoder.end()


@settings(max_examples=50, deadline=None)
@given(frames)
def test_byte_at_a_time(messages: list[tuple[list[Header], bytes]]) -> None:
    stream = encode(messages)
    boundaries = set(frame_ends(messages))
    decoder = EventStreamDecoder()
    decoded: list[Message] = []
    for index in range(len(stream)):
        decoded += decoder.feed(stream[index : index + 1])
        # A partial frame is held exactly until its last byte arrives.
        assert decoder.pending == (index + 1 not in boundaries)
    assert [comparable(m) for m in decoded] == botocore_messages(stream)


@settings(max_examples=150, deadline=None)
@given(frames, st.data())
def test_a_corrupted_byte_is_refused(
    messages: list[tuple[list[Header], bytes]], data: st.DataObject
) -> None:
    stream = encode(messages)
    position = data.draw(st.integers(0, len(stream) - 1))
    flip = data.draw(st.integers(1, 255))
    corrupted = bytearray(stream)
    corrupted[position] ^= flip
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
    decoder = EventStreamDecoder()
    decoded: list[Message] = []
    start = 0
    with pytest.raises(EventStreamError) as refused:
        for cut in [*sorted(cuts), len(stream)]:
            decoded += decoder.feed(bytes(corrupted[start:cut]))
            start = max(start, cut)
    # Exactly the frames wholly before the corrupted byte came out, as they were sent; those
    # completed by the refused piece ride on the error.
    decoded += refused.value.messages
    intact = sum(1 for end in frame_ends(messages) if end <= position)
    assert [m.payload for m in decoded] == [payload for _, payload in messages][:intact]
    # botocore refuses the same stream.
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(corrupted))
    with pytest.raises(ParserError):
        for _ in messages:
            next(buffer)
    # A broken stream stays broken.
    with pytest.raises(EventStreamError, match="already broken"):
        decoder.feed(stream)


def prelude(total: int, headers_length: int) -> bytes:
    head = struct.pack("!II", total, headers_length)
    return head + struct.pack("!I", zlib.crc32(head))


@pytest.mark.parametrize(
    ("total", "headers_length", "complaint"),
    [
        (MAX_MESSAGE_LENGTH + 1, 0, "outside"),
        (2**32 - 1, 0, "outside"),
        (15, 0, "outside"),
        (100, 85, "does not fit"),
        (300_000, 200_000, "does not fit"),
    ],
)
def test_absurd_lengths_are_refused_at_once(
    total: int, headers_length: int, complaint: str
) -> None:
    decoder = EventStreamDecoder()
    # Refused from the prelude alone: the decoder never waits for gigabytes.
    with pytest.raises(EventStreamError, match=complaint):
        decoder.feed(prelude(total, headers_length))


def test_a_smaller_limit_can_be_set() -> None:
    frame = encode_frame(event_headers("chunk"), b"x" * 1000)
    with pytest.raises(EventStreamError, match="outside"):
        EventStreamDecoder(max_message_length=512).feed(frame)
    assert len(EventStreamDecoder(max_message_length=2048).feed(frame)) == 1


def test_prelude_crc_mismatch_names_it() -> None:
    frame = bytearray(encode_frame(event_headers("chunk"), b"{}"))
    frame[9] ^= 0x01  # inside the prelude CRC itself
    with pytest.raises(EventStreamError, match="prelude CRC mismatch"):
        EventStreamDecoder().feed(bytes(frame))


def test_message_crc_mismatch_names_it() -> None:
    frame = bytearray(encode_frame(event_headers("chunk"), b"{}"))
    frame[-1] ^= 0x01
    with pytest.raises(EventStreamError, match="message CRC mismatch"):
        EventStreamDecoder().feed(bytes(frame))


def raw_frame(header_block: bytes, payload: bytes = b"") -> bytes:
    """A frame with valid CRCs around whatever header bytes it is given."""
    return encode_frame(header_block, payload)


@pytest.mark.parametrize(
    ("block", "complaint"),
    [
        (b"\x01a\x0a", "unknown type 10"),
        (b"\x01a\x07\x00\x09abc", "runs past"),
        (b"\x05ab", "runs past"),
        (b"\x01a\x04\x00\x00", "malformed"),
        (b"\x01a\x00\x01a\x01", "appears twice"),
        (b"\x02\xff\xfe\x00", "malformed"),
        (b"\x01a\x07\x00\x02\xff\xfe", "malformed"),
        (b"\x01a\x09" + b"\x00" * 15, "malformed"),
    ],
)
def test_malformed_headers_are_refused(block: bytes, complaint: str) -> None:
    with pytest.raises(EventStreamError, match=complaint):
        EventStreamDecoder().feed(raw_frame(block))
    with pytest.raises(EventStreamError):
        parse_headers(block)


def test_pending_and_end_tell_a_stream_cut_mid_frame() -> None:
    first = encode_frame(event_headers("chunk"), b'{"bytes":"AA=="}')
    second = encode_frame(event_headers("chunk"), b'{"bytes":"AQ=="}')
    decoder = EventStreamDecoder()
    assert decoder.feed(first + second[:5]) != []
    assert decoder.pending
    assert decoder.buffered == 5
    with pytest.raises(EventStreamError, match="cut mid-frame: 5 bytes"):
        decoder.end()

    clean = EventStreamDecoder()
    assert len(clean.feed(first + second)) == 2
    assert not clean.pending
    assert clean.buffered == 0
    clean.end()


def test_bytearray_and_memoryview_input() -> None:
    stream = encode_frame(event_headers("messageStart"), b"{}") * 3
    assert len(EventStreamDecoder().feed(bytearray(stream))) == 3
    assert len(EventStreamDecoder().feed(memoryview(stream))) == 3
    decoder = EventStreamDecoder()
    assert decoder.feed(memoryview(stream)[:20]) == []
    assert len(decoder.feed(memoryview(stream)[20:])) == 3


def test_message_accessors() -> None:
    event = EventStreamDecoder().feed(encode_frame(event_headers("metadata"), b"{}"))[0]
    assert (event.message_type, event.event_type, event.exception_type) == (
        "event",
        "metadata",
        None,
    )
    assert event.headers[":content-type"] == "application/json"
    error = EventStreamDecoder().feed(encode_frame(exception_headers("throttlingException"), b""))
    assert (error[0].message_type, error[0].exception_type) == ("exception", "throttlingException")


def test_repeated_header_blocks_are_shared_not_confused() -> None:
    stream = b"".join(
        encode_frame(event_headers(name), name.encode()) for name in ["a", "b", "a", "c", "b"] * 30
    )
    decoded = EventStreamDecoder().feed(stream)
    assert [m.event_type for m in decoded] == [m.payload.decode() for m in decoded]
    with pytest.raises(TypeError):
        decoded[0].headers[":event-type"] = "changed"  # type: ignore[index]


def test_known_vector_and_botocore_agree_with_the_encoder() -> None:
    assert encode_frame(b"", b"") == EMPTY_MESSAGE
    (message,) = EventStreamDecoder().feed(EMPTY_MESSAGE)
    assert message == Message({}, b"")


@pytest.mark.parametrize(
    ("header", "complaint"),
    [
        (("a", HeaderType.BYTE, 128), "a"),
        (("a", HeaderType.INTEGER, "1"), "needs an int"),
        (("a", HeaderType.INTEGER, True), "needs an int"),
        (("a", HeaderType.STRING, 5), "needs str or bytes"),
        (("a", HeaderType.UUID, b"0" * 16), "needs a UUID"),
        (("", HeaderType.TRUE, True), "1-255 bytes"),
        (("x" * 256, HeaderType.TRUE, True), "1-255 bytes"),
        (("a", HeaderType.BYTE_ARRAY, b"0" * 70000), "longer than 65535"),
    ],
)
def test_encoder_refuses_values_that_do_not_fit(header: Header, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        encode_headers([header])
