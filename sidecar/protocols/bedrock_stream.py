"""What every Bedrock response shares: AWS event-stream responses decoded as their bytes pass,
and the usage and latency Bedrock reports (Converse's TokenUsage, InvokeModel's metrics)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from sidecar.protocols.eventstream import EventStreamDecoder, EventStreamError, Message
from sidecar.protocols.jsonfields import as_float, as_int
from sidecar.protocols.parsers import ResponseParser
from sidecar.record import CallRecord


def apply_token_usage(
    record: CallRecord,
    usage: Any,
    *,
    input_key: str = "inputTokens",
    output_key: str = "outputTokens",
    cache_read_key: str = "cacheReadInputTokens",
    cache_write_key: str = "cacheWriteInputTokens",
) -> None:
    """Write Bedrock usage counts: its input excludes cache reads and writes, which come on top
    (the record's input includes them, as the conventions count input)."""
    if not isinstance(usage, dict):
        return
    uncached = as_int(usage.get(input_key))
    cache_read = as_int(usage.get(cache_read_key))
    cache_write = as_int(usage.get(cache_write_key))
    if uncached is not None or cache_read is not None or cache_write is not None:
        record.input_tokens = (uncached or 0) + (cache_read or 0) + (cache_write or 0)
        record.cache_read_tokens = cache_read
        record.cache_creation_tokens = cache_write
    output = as_int(usage.get(output_key))
    if output is not None:
        record.output_tokens = output


def apply_latency_ms(record: CallRecord, value: Any) -> None:
    """The processing time Bedrock reports, in milliseconds (`latencyMs`, `invocationLatency`)."""
    latency = as_float(value)
    if latency is not None and latency >= 0:
        record.provider_latency_s = latency / 1000


class EventStreamParser(ResponseParser):
    """An `application/vnd.amazon.eventstream` response: every `event` message goes to
    `on_event`; an `exception` or `error` message names the provider's error.

    Complete only when the subclass saw its stream's last event, no frame was cut or corrupt,
    and no exception arrived.
    """

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._frames = EventStreamDecoder()
        self._broken = False
        self._failed = False

    def feed_decoded(self, data: bytes, now: float) -> None:
        if self._broken:
            return
        try:
            messages = self._frames.feed(data)
        except EventStreamError as exc:
            messages = exc.messages
            self._broken = True
        for message in messages:
            kind = message.message_type
            if kind == "event":
                self.on_event(message, now)
            elif kind in ("exception", "error"):
                self._failed = True
                self.record.provider_error_type = (
                    message.exception_type or message.header(":error-code") or kind
                )

    @abstractmethod
    def on_event(self, message: Message, now: float) -> None:
        """One event message (`message.event_type` names it; its payload is JSON)."""

    @property
    @abstractmethod
    def ended(self) -> bool:
        """Whether the stream's last event was seen."""

    @property
    def complete(self) -> bool:
        return self.ended and not self._broken and not self._failed

    def finish(self) -> None:
        if self._broken:
            return
        try:
            self._frames.end()
        except EventStreamError:
            self._broken = True  # cut inside a frame
