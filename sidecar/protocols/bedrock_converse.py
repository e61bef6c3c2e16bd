"""Bedrock's Converse API: the whole response, and ConverseStream's events
(messageStart, contentBlockStart, contentBlockDelta, contentBlockStop, messageStop, metadata)."""

from __future__ import annotations

from typing import Any

import orjson

from sidecar.protocols.bedrock_stream import (
    EventStreamParser,
    apply_latency_ms,
    apply_token_usage,
)
from sidecar.protocols.eventstream import Message
from sidecar.protocols.jsonfields import as_str, dig, parse_json_body
from sidecar.protocols.parsers import BodyParser
from sidecar.record import CallRecord


def tool_call(name: Any, arguments: Any) -> str:
    """A tool call as the record keeps it: name, NUL, arguments as JSON text."""
    text = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    return f"{name}\0{text}"


class ConverseBodyParser(BodyParser):
    """A Converse response: usage, stop reason, latency; the output when content is kept."""

    def on_json(self, body: Any) -> None:
        if not isinstance(body, dict):
            return
        record = self.record
        reason = as_str(body.get("stopReason"))
        if reason is not None:
            record.finish_reasons = [reason]
        apply_token_usage(record, body.get("usage"))
        apply_latency_ms(record, dig(body, "metrics", "latencyMs"))
        if record.options.keep_output:
            content = dig(body, "output", "message", "content")
            blocks = [block for block in content or () if isinstance(block, dict)]
            record.output_text = "".join(
                block["text"] for block in blocks if isinstance(block.get("text"), str)
            )
            record.output_tool_calls = [
                tool_call(dig(block, "toolUse", "name"), dig(block, "toolUse", "input"))
                for block in blocks
                if isinstance(block.get("toolUse"), dict)
            ]


class ConverseStreamParser(EventStreamParser):
    """A ConverseStream response: every contentBlockDelta is an output chunk (the first one is
    the time to first chunk); usage and latency come in the last event, `metadata`. Complete
    once `messageStop` was seen."""

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._stopped = False
        self._text: list[str] | None = [] if record.options.keep_output else None
        self._tools: dict[Any, list[Any]] = {}  # block index -> [name, argument pieces]

    @property
    def ended(self) -> bool:
        return self._stopped

    def on_event(self, message: Message, now: float) -> None:
        kind = message.event_type
        if kind == "contentBlockDelta":
            self.mark_chunk(now)
            if self._text is not None:
                self._keep_delta(parse_json_body(message.payload))
        elif kind == "messageStop":
            self._stopped = True
            reason = as_str(dig(parse_json_body(message.payload), "stopReason"))
            if reason is not None:
                self.record.finish_reasons = [reason]
        elif kind == "metadata":
            metadata = parse_json_body(message.payload)
            apply_token_usage(self.record, dig(metadata, "usage"))
            apply_latency_ms(self.record, dig(metadata, "metrics", "latencyMs"))
        elif kind == "contentBlockStart" and self._text is not None:
            event = parse_json_body(message.payload)
            tool = dig(event, "start", "toolUse")
            if isinstance(tool, dict):
                self._tools[dig(event, "contentBlockIndex")] = [tool.get("name"), []]

    def _keep_delta(self, event: Any) -> None:
        assert self._text is not None
        delta = dig(event, "delta")
        text = dig(delta, "text")
        if isinstance(text, str):
            self._text.append(text)
        piece = dig(delta, "toolUse", "input")
        tool = self._tools.get(dig(event, "contentBlockIndex"))
        if tool is not None and isinstance(piece, str):
            tool[1].append(piece)

    def finish(self) -> None:
        super().finish()
        if self._text is not None:
            self.record.output_text = "".join(self._text)
            self.record.output_tool_calls = [
                tool_call(name, "".join(pieces)) for name, pieces in self._tools.values()
            ]
