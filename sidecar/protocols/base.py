"""The interface every wire protocol implements, and the parsers they build on."""

from __future__ import annotations

import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import orjson

from sidecar.protocols.sse import SSEDecoder
from sidecar.record import CallRecord, RequestInfo

# Non-streaming bodies larger than this are not decoded whole; usage is then
# looked for in the body's head and tail only.
MAX_DECODE_BYTES = 8 * 1024 * 1024
HEAD_TAIL_BYTES = 64 * 1024


class ContentDecoder:
    """Incrementally undoes a Content-Encoding so a compressed body can be parsed."""

    def __init__(self, encoding: str) -> None:
        self._brotli: Any = None
        self._zlib: Any = None
        enc = encoding.strip().lower()
        if enc in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._zlib = zlib.decompressobj()
        elif enc == "br":
            import brotli

            self._brotli = brotli.Decompressor()
        self.identity = self._zlib is None and self._brotli is None

    def decode(self, data: bytes) -> bytes:
        """Decoded bytes of one more piece of the body; b"" when it cannot be decoded."""
        try:
            if self._zlib is not None:
                return bytes(self._zlib.decompress(data))
            if self._brotli is not None:
                return bytes(self._brotli.process(data))
        except Exception:
            self._zlib = None
            self._brotli = None
            return b""
        return data


def decodable_encodings() -> tuple[str, ...]:
    """Content-Encodings the sidecar can read, for filtering Accept-Encoding upstream."""
    try:
        import brotli  # noqa: F401

        return ("gzip", "deflate", "br")
    except ImportError:
        return ("gzip", "deflate")


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


class WireProtocol(ABC):
    """One provider's wire protocol: classify requests, parse responses, shape errors."""

    name: str
    provider_name: str

    @abstractmethod
    def claims(self, path: str) -> bool:
        """Whether this protocol owns the standard (unprefixed) request path `path`."""

    @abstractmethod
    def classify(self, method: str, path: str, query: str, body: Any) -> RequestInfo:
        """Facts about the request; `body` is the decoded JSON body or None."""

    @abstractmethod
    def response_parser(
        self,
        record: CallRecord,
        content_type: str,
        content_encoding: str,
    ) -> ResponseParser:
        """A parser for this response (stream or body; success or error)."""

    @abstractmethod
    def error_body(self, status: int, message: str) -> bytes:
        """A JSON error body in this provider's own error shape."""

    def inject_stream_usage(self, info: RequestInfo, raw_body: bytes) -> bytes | None:
        """A body asking upstream to report usage on a stream, or None when not needed."""
        return None

    def inject_logprobs(self, info: RequestInfo, raw_body: bytes) -> bytes | None:
        """A body also asking upstream for token logprobs, or None when not possible."""
        return None

    def stream_filter(self, *, usage: bool = True, logprobs: bool = False) -> StreamFilter | None:
        """A filter that removes what the sidecar injected (usage, logprobs) from a stream."""
        return None

    def body_without_logprobs(self, body: bytes) -> bytes:
        """A whole response body without the logprobs `inject_logprobs` asked for."""
        return body


class StreamFilter(ABC):
    """Rewrites a stream on its way to the app, event by event."""

    @abstractmethod
    def feed(self, data: bytes) -> bytes:
        """Bytes to send to the app for this piece of the upstream stream."""

    @abstractmethod
    def flush(self) -> bytes:
        """Whatever is still held back at the end of the stream."""


def parse_json_body(raw: bytes) -> Any:
    """The decoded JSON request body, or None when it is not JSON."""
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def as_int(value: Any) -> int | None:
    """An int from a JSON value, or None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    """A float from a JSON value, or None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def is_event_stream(content_type: str) -> bool:
    """Whether a Content-Type names a Server-Sent Events stream."""
    return content_type.strip().lower().startswith("text/event-stream")


def read_request_params(info: RequestInfo, body: dict[str, Any]) -> None:
    """Fill `info` from the top-level fields OpenAI- and Anthropic-style bodies share."""
    info.request_model = as_str(body.get("model"))
    info.stream = body.get("stream") is True
    info.temperature = as_float(body.get("temperature"))
    info.top_p = as_float(body.get("top_p"))
    info.seed = as_int(body.get("seed"))
    info.choice_count = as_int(body.get("n"))
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        info.max_tokens = as_int(body.get(key))
        if info.max_tokens is not None:
            break


def as_str(value: Any) -> str | None:
    """A non-empty str from a JSON value, or None."""
    if isinstance(value, str) and value:
        return value
    return None


def dig(value: Any, *keys: str) -> Any:
    """`value[k1][k2]...` through nested JSON objects, or None where a level is missing."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


_TYPE_FIELD = re.compile(rb'"type"\s*:\s*"([^"]*)"')


def event_type(name: bytes | None, data: bytes) -> bytes:
    """An SSE event's type: its `event:` name, else the first `"type"` field of its data."""
    if name:
        return name
    match = _TYPE_FIELD.search(data)
    return match.group(1) if match else b""


def json_object_end(data: bytes, start: int) -> int:
    """The index just past the JSON object opening at `data[start]`; -1 if it never closes."""
    depth = 0
    in_string = False
    position = start
    size = len(data)
    while position < size:
        byte = data[position]
        if in_string:
            if byte == 0x5C:  # a backslash escapes the next byte
                position += 1
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x7B:
            depth += 1
        elif byte == 0x7D:
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return -1
