"""The parsers every wire protocol builds on: SSE event streams, whole JSON bodies, error bodies."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import orjson

from sidecar.protocols.decoding import ContentDecoder
from sidecar.protocols.jsonfields import as_int
from sidecar.protocols.sse import SSEDecoder
from sidecar.record import CallRecord

# Non-streaming bodies larger than this are not decoded whole; usage is then
# looked for in the body's head and tail only.
MAX_DECODE_BYTES = 8 * 1024 * 1024


HEAD_TAIL_BYTES = 64 * 1024


class ResponseParser(ABC):
    """Reads one response as its bytes pass and writes what it learns into the record."""

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        self.record = record
        self._decoder = ContentDecoder(content_encoding) if content_encoding else None

    def feed(self, data: bytes, now: float) -> None:
        """Take the next raw (possibly compressed) piece of the body, received at `now`."""
        if self._decoder is not None and not self._decoder.identity:
            data = self._decoder.decode(data)
            if not data:
                return
        self.feed_decoded(data, now)

    @abstractmethod
    def feed_decoded(self, data: bytes, now: float) -> None:
        """Take the next decoded piece of the body."""

    @abstractmethod
    def finish(self) -> None:
        """The body is complete (or cut short): write the final facts into the record."""

    @property
    def complete(self) -> bool:
        """False when the body itself shows it was cut short (a body parser cannot tell)."""
        return True

    def mark_chunk(self, now: float) -> None:
        """Record that an output chunk arrived at `now`."""
        record = self.record
        if record.first_chunk is None:
            record.first_chunk = now
        record.chunk_times.append(now)


class StreamParser(ResponseParser):
    """Splits a text/event-stream into events and hands each to `on_event`."""

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._sse = SSEDecoder()

    def feed_decoded(self, data: bytes, now: float) -> None:
        for event, payload in self._sse.feed(data):
            self.on_event(event, payload, now)

    @abstractmethod
    def on_event(self, event: bytes | None, data: bytes, now: float) -> None:
        """One complete SSE event: its `event:` name (or None) and its joined `data:`."""

    @property
    def complete(self) -> bool:
        """True once the protocol's terminal event was seen; a stream without it was cut short."""
        return False

    def finish(self) -> None:
        return None


class BodyParser(ResponseParser):
    """Collects a whole (non-streaming) body and hands its decoded JSON to `on_json`."""

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._parts: list[bytes] = []
        self._size = 0
        self._tail = b""

    def feed_decoded(self, data: bytes, now: float) -> None:
        if self._size < MAX_DECODE_BYTES:
            self._parts.append(data)
        else:
            self._tail = (self._tail + data)[-HEAD_TAIL_BYTES:]
        self._size += len(data)

    def finish(self) -> None:
        body = b"".join(self._parts)
        self._parts = []
        if not body:
            return
        if self._size <= MAX_DECODE_BYTES:
            try:
                decoded = orjson.loads(body)
            except orjson.JSONDecodeError:
                return
            self.on_json(decoded)
        else:
            self.on_oversized(body[:HEAD_TAIL_BYTES], (body + self._tail)[-HEAD_TAIL_BYTES:])

    @abstractmethod
    def on_json(self, body: Any) -> None:
        """The whole decoded body."""

    def on_oversized(self, head: bytes, tail: bytes) -> None:
        """A body too large to decode: look for facts in its first and last bytes."""
        return None


class ErrorParser(BodyParser):
    """Reads an error response's body for the provider's own error type."""

    def __init__(
        self,
        record: CallRecord,
        content_encoding: str,
        error_type: Callable[[Any], str | None],
    ) -> None:
        super().__init__(record, content_encoding)
        self._error_type = error_type

    def on_json(self, body: Any) -> None:
        self.record.provider_error_type = self._error_type(body)


class FinishReasons:
    """Collects one finish reason per choice (by index) into `record.finish_reasons`."""

    __slots__ = ("_by_index", "_record")

    def __init__(self, record: CallRecord) -> None:
        self._record = record
        self._by_index: dict[int, str] = {}

    def add(self, index: Any, reason: Any) -> None:
        """Note `reason` for the choice at `index` (ignored unless a non-empty string)."""
        if not isinstance(reason, str) or not reason:
            return
        self._by_index[as_int(index) or 0] = reason
        self._record.finish_reasons = [self._by_index[i] for i in sorted(self._by_index)]

    def __len__(self) -> int:
        return len(self._by_index)
