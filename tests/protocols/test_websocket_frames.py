"""The frame scanner against hand-built RFC 6455 frames, cut at every kind of boundary: it
reports the same messages whatever the pieces, keeps only what the sink asks for, and stops
(without raising) at bytes that are not WebSocket framing."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.protocols.websocket_frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    FrameScanner,
    unmask,
)
from tests.helpers.realtime import frame

AUDIO = b'{"type":"response.output_audio.delta","delta":"' + b"QUJD" * 50_000 + b'"}'
DONE = b'{"type":"response.done","response":{"usage":{"input_tokens":5}}}'
TAIL_TYPED = b'{"delta":"' + b"x" * 3000 + b'","type":"late.type"}'


@dataclass
class Sink:
    """Keeps what the scanner reports; keeps messages whose head names `keep_type`."""

    keep_type: bytes = b'"response.done"'
    messages: list[tuple[int, bytes, bytes, bytes | None, int, float]] = field(default_factory=list)
    controls: list[tuple[int, bytes]] = field(default_factory=list)
    asked: list[bytes] = field(default_factory=list)
    malformed_why: list[str] = field(default_factory=list)

    def keep(self, opcode: int, head: bytes) -> bool:
        self.asked.append(head)
        return self.keep_type in head

    def message(
        self, opcode: int, head: bytes, tail: bytes, body: bytes | None, size: int, now: float
    ) -> None:
        self.messages.append((opcode, head, tail, body, size, now))

    def control(self, opcode: int, payload: bytes, now: float) -> None:
        self.controls.append((opcode, payload))

    def malformed(self, why: str) -> None:
        self.malformed_why.append(why)


def stream(mask: bytes | None) -> bytes:
    return b"".join(
        [
            frame(TEXT, b'{"type":"session.created"}', mask=mask),
            frame(TEXT, AUDIO[:70_000], fin=False, mask=mask),
            frame(PING, b"ping!", mask=mask),
            frame(CONTINUATION, AUDIO[70_000:], mask=mask),
            frame(TEXT, DONE, mask=mask),
            frame(BINARY, b"", mask=mask),
            frame(TEXT, TAIL_TYPED, mask=mask),
            frame(CLOSE, (1000).to_bytes(2, "big") + b"done", mask=mask),
        ]
    )


def check(sink: Sink) -> None:
    assert not sink.malformed_why
    opcodes = [message[0] for message in sink.messages]
    assert opcodes == [TEXT, TEXT, TEXT, BINARY, TEXT]
    created, audio, done, empty, late = sink.messages
    assert created[1] == b'{"type":"session.created"}' and created[3] is None
    # The audio: its first 512 and last 256 bytes, its size; never its body.
    assert (audio[1], audio[2], audio[3], audio[4]) == (AUDIO[:512], AUDIO[-256:], None, len(AUDIO))
    assert done[3] == DONE  # kept: the sink asked for it
    assert empty[4] == 0
    assert late[2] == TAIL_TYPED[-256:]
    assert sink.controls == [(PING, b"ping!"), (CLOSE, (1000).to_bytes(2, "big") + b"done")]


@pytest.mark.parametrize("mask", [None, b"\x01\x80\xfe\x7f"])
def test_whole_stream_at_once(mask: bytes | None) -> None:
    sink = Sink()
    FrameScanner(sink).feed(stream(mask), 1.0)
    check(sink)


@settings(max_examples=60, deadline=None)
@given(
    masked=st.booleans(),
    cuts=st.lists(st.integers(min_value=1, max_value=300_000), min_size=1, max_size=40),
)
def test_any_pieces_give_the_same_messages(masked: bool, cuts: list[int]) -> None:
    data = stream(os.urandom(4) if masked else None)
    sink = Sink()
    scanner = FrameScanner(sink)
    points = sorted({cut % len(data) for cut in cuts} | {0, len(data)})
    for start, end in pairwise(points):
        scanner.feed(data[start:end], float(start))
    check(sink)


def test_byte_by_byte_headers_and_times() -> None:
    sink = Sink()
    scanner = FrameScanner(sink)
    data = frame(TEXT, DONE, mask=b"abcd") + frame(PONG, b"")
    for index in range(len(data)):
        scanner.feed(data[index : index + 1], float(index))
    (message,) = sink.messages
    # A message is reported when its last byte arrived.
    assert message[3] == DONE and message[5] == float(len(frame(TEXT, DONE, mask=b"abcd")) - 1)
    assert sink.controls == [(PONG, b"")]


def test_a_kept_message_past_the_bound_is_dropped() -> None:
    sink = Sink()
    big = DONE[:-1] + b',"pad":"' + b"p" * 5000 + b'"}'
    FrameScanner(sink, keep_bytes=4096).feed(frame(TEXT, big), 0.0)
    assert sink.messages[0][3] is None and sink.messages[0][4] == len(big)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (frame(0x3, b"x"), "reserved opcode 0x3"),
        (frame(TEXT, b"x", rsv=4), "reserved bits set (no extension was negotiated)"),
        (frame(PING, b"x", fin=False), "a fragmented or oversized control frame"),
        (frame(PING, b"x" * 126), "a fragmented or oversized control frame"),
        (frame(CONTINUATION, b"x"), "a continuation frame outside a message"),
        (frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), "a new message before the last ended"),
        (bytes([0x81, 127]) + (1 << 63).to_bytes(8, "big"), "a frame length with its most"),
    ],
)
def test_bytes_that_are_not_framing_stop_the_scanner(data: bytes, why: str) -> None:
    sink = Sink()
    scanner = FrameScanner(sink)
    scanner.feed(data + frame(TEXT, b'{"type":"after"}'), 0.0)
    assert len(sink.malformed_why) == 1 and sink.malformed_why[0].startswith(why[:30])
    assert scanner.broken
    assert not [message for message in sink.messages if message[1] == b'{"type":"after"}']


def test_unmask_from_any_offset() -> None:
    payload = os.urandom(101)
    mask = os.urandom(4)
    masked = unmask(payload, mask, 0)
    for offset in range(9):
        assert unmask(masked[offset:], mask, offset) == payload[offset:]
