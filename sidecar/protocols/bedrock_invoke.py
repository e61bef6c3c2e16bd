"""Bedrock's InvokeModel and InvokeModelWithResponseStream, whose bodies are the model family's
own: Anthropic Messages, Meta Llama, Amazon Nova and Titan, Mistral. A family this module does
not know is forwarded and recorded without tokens (a stream still gets them from the metrics
Bedrock adds to its last chunk).

A response stream is event-stream messages of type `chunk`, whose JSON payload carries one
family event, base64-encoded, in `bytes`; the last one also holds
`amazon-bedrock-invocationMetrics` (token counts and latency, for every family).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sidecar.protocols.anthropic import MessagesBodyParser, MessagesStreamParser
from sidecar.protocols.bedrock_converse import ConverseBodyParser
from sidecar.protocols.bedrock_stream import (
    EventStreamParser,
    apply_latency_ms,
    apply_token_usage,
)
from sidecar.protocols.eventstream import Message
from sidecar.protocols.jsonfields import as_int, as_str, dig, parse_json_body
from sidecar.protocols.parsers import BodyParser
from sidecar.record import CallRecord

METRICS_KEY = "amazon-bedrock-invocationMetrics"
# Event types of Anthropic's Messages stream.
_ANTHROPIC_EVENTS = frozenset(
    (
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    )
)
# Amazon Nova's usage keys in InvokeModel bodies and its stream's metadata event.
_NOVA_USAGE = {
    "cache_read_key": "cacheReadInputTokenCount",
    "cache_write_key": "cacheWriteInputTokenCount",
}


def apply_invocation_metrics(record: CallRecord, metrics: Any) -> None:
    """The token counts of `amazon-bedrock-invocationMetrics`, Bedrock's own for any family."""
    apply_token_usage(
        record,
        metrics,
        input_key="inputTokenCount",
        output_key="outputTokenCount",
        cache_read_key="cacheReadInputTokenCount",
        cache_write_key="cacheWriteInputTokenCount",
    )


def _finish_reason(record: CallRecord, reason: Any) -> None:
    text = as_str(reason)
    if text is not None:
        record.finish_reasons = [text]


class InvokeBodyParser(BodyParser):
    """A whole InvokeModel response, read by its shape (an application inference profile's id
    does not name the family)."""

    def on_json(self, body: Any) -> None:
        if not isinstance(body, dict):
            return
        record = self.record
        if body.get("type") == "message":  # Anthropic Messages
            MessagesBodyParser(record).on_json(body)
        elif "generation" in body:  # Meta Llama
            record.input_tokens = as_int(body.get("prompt_token_count"))
            record.output_tokens = as_int(body.get("generation_token_count"))
            _finish_reason(record, body.get("stop_reason"))
            if record.options.keep_output:
                record.output_text = as_str(body.get("generation")) or ""
        elif isinstance(body.get("output"), dict):  # Amazon Nova: Converse's shape, own usage
            ConverseBodyParser(record).on_json({**body, "usage": None})
            apply_token_usage(record, body.get("usage"), **_NOVA_USAGE)
        elif "inputTextTokenCount" in body:  # Amazon Titan text or embeddings
            record.input_tokens = as_int(body.get("inputTextTokenCount"))
            result = dig(body, "results")
            first = result[0] if isinstance(result, list) and result else None
            if isinstance(first, dict):
                record.output_tokens = as_int(first.get("tokenCount"))
                _finish_reason(record, first.get("completionReason"))
                if record.options.keep_output:
                    record.output_text = as_str(first.get("outputText")) or ""
        elif isinstance(body.get("outputs"), list) and body["outputs"]:  # Mistral: no usage
            first = body["outputs"][0]
            _finish_reason(record, dig(first, "stop_reason"))
            if record.options.keep_output:
                record.output_text = as_str(dig(first, "text")) or ""


class InvokeStreamParser(EventStreamParser):
    """An InvokeModelWithResponseStream response: each chunk's family event is decoded; those
    carrying output are output chunks. Complete once the family's last event (or Bedrock's
    invocation metrics, which come with the last chunk) was seen."""

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._anthropic: MessagesStreamParser | None = None
        self._ended = False
        self._text: list[str] | None = [] if record.options.keep_output else None

    @property
    def ended(self) -> bool:
        return self._ended or (self._anthropic is not None and self._anthropic.complete)

    def on_event(self, message: Message, now: float) -> None:
        if message.event_type != "chunk":
            return
        encoded = dig(parse_json_body(message.payload), "bytes")
        if not isinstance(encoded, str):
            return
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return
        event = parse_json_body(data)
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if isinstance(kind, str) and kind in _ANTHROPIC_EVENTS:
            if self._anthropic is None:
                self._anthropic = MessagesStreamParser(self.record)
            self._anthropic.on_event(kind.encode(), data, now)
        else:
            self._other_family(event, now)
        metrics = event.get(METRICS_KEY)
        if isinstance(metrics, dict):
            record = self.record
            if record.input_tokens is None and record.output_tokens is None:
                apply_invocation_metrics(record, metrics)  # a family without usage of its own
            apply_latency_ms(record, metrics.get("invocationLatency"))
            self._ended = True

    def _other_family(self, event: dict[str, Any], now: float) -> None:
        record = self.record
        if "generation" in event:  # Meta Llama: the generation count is cumulative
            self._output(event.get("generation"), now)
            prompt = as_int(event.get("prompt_token_count"))
            if prompt is not None:
                record.input_tokens = prompt
            record.output_tokens = as_int(event.get("generation_token_count"))
            if as_str(event.get("stop_reason")) is not None:
                _finish_reason(record, event.get("stop_reason"))
                self._ended = True
        elif "contentBlockDelta" in event:  # Amazon Nova
            self._output(dig(event, "contentBlockDelta", "delta", "text"), now, always=True)
        elif "messageStop" in event:
            _finish_reason(record, dig(event, "messageStop", "stopReason"))
            self._ended = True
        elif "metadata" in event:
            apply_token_usage(record, dig(event, "metadata", "usage"), **_NOVA_USAGE)
        elif "outputText" in event:  # Amazon Titan
            self._output(event.get("outputText"), now)
            record.input_tokens = as_int(event.get("inputTextTokenCount")) or record.input_tokens
            record.output_tokens = as_int(event.get("totalOutputTextTokenCount"))
            if as_str(event.get("completionReason")) is not None:
                _finish_reason(record, event.get("completionReason"))
                self._ended = True
        elif isinstance(event.get("outputs"), list) and event["outputs"]:  # Mistral
            first = event["outputs"][0]
            self._output(dig(first, "text"), now)
            if as_str(dig(first, "stop_reason")) is not None:
                _finish_reason(record, dig(first, "stop_reason"))
                self._ended = True
        elif "messageStart" not in event and "contentBlockStop" not in event:
            self.mark_chunk(now)  # a family this parser does not know: every chunk counts

    def _output(self, text: Any, now: float, *, always: bool = False) -> None:
        """An event with output text (`always`: a content delta, even without text)."""
        if always or (isinstance(text, str) and text):
            self.mark_chunk(now)
        if self._text is not None and isinstance(text, str):
            self._text.append(text)

    def finish(self) -> None:
        super().finish()
        if self._anthropic is not None:
            self._anthropic.finish()
        elif self._text is not None:
            self.record.output_text = "".join(self._text)
