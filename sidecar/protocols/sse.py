"""Incremental Server-Sent Events decoding, shared by every streaming protocol."""

from __future__ import annotations

from collections.abc import Iterator


class SSEDecoder:
    """Splits a byte stream into complete SSE events, holding back a partial one."""

    __slots__ = ("_buffer", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._skip_lf = False

    def feed(self, data: bytes) -> Iterator[tuple[bytes | None, bytes]]:
        """Yield (event name or None, data) for every event completed by `data`."""
        if self._skip_lf and data:
            # The previous piece ended in CR, already taken as a line end: drop its LF.
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if (
            not self._buffer
            and data.startswith(b"data: ")
            and data.find(b"\n") == len(data) - 2
            and data.endswith(b"\n\n")
            and b"\r" not in data
        ):
            # The common piece: exactly one event of one `data:` line, LF-terminated (what
            # OpenAI-style streams send per chunk): no buffering, no line splitting.
            yield None, data[6:-2]
            return
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            event = parse_event(buffer[start:end])
            start = end + 2
            if event is not None:
                yield event
        self._buffer = buffer[start:]


def parse_event(block: bytes) -> tuple[bytes | None, bytes] | None:
    """The (event name, joined data) of one event block; None for a comment-only block."""
    name: bytes | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            value = line[6:]
            name = value[1:] if value.startswith(b" ") else value
    if not data and name is None:
        return None
    return name, b"\n".join(data)
