"""The interface every wire protocol implements, and the filter that edits a stream."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from sidecar.protocols.parsers import ResponseParser
from sidecar.record import CallRecord, RequestInfo


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

    def accepts_websocket(self, path: str) -> bool:
        """Whether a WebSocket upgrade on `path` is relayed (a Realtime API session, parsed
        by protocols/openai_realtime.py); other upgrades are answered 400."""
        return False

    def carries_credentials(self, headers: Mapping[str, str], query: str) -> bool:
        """Whether a request carries a credential only this provider uses (e.g. Azure's
        `api-key` header): such a request must never go to another provider."""
        return False

    def inject_stream_usage(self, info: RequestInfo, body: Any, raw_body: bytes) -> bytes | None:
        """A body asking upstream to report usage on a stream, or None when not needed;
        `body` is `raw_body` decoded."""
        return None

    def inject_logprobs(self, info: RequestInfo, body: Any, raw_body: bytes) -> bytes | None:
        """A body also asking upstream for token logprobs, or None when not possible;
        `body` is `raw_body` decoded."""
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
