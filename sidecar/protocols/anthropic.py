"""Anthropic's Messages API (`/v1/messages`): requests, bodies, event streams and errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sidecar.protocols.interface import WireProtocol
from sidecar.protocols.jsonfields import (
    as_int,
    as_str,
    dig,
    event_type,
    is_event_stream,
    parse_json_body,
    read_request_params,
)
from sidecar.protocols.parsers import BodyParser, ErrorParser, ResponseParser, StreamParser
from sidecar.record import CallRecord, RequestInfo

# error.type of the errors the sidecar itself answers with.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class AnthropicProtocol(WireProtocol):
    """Anthropic's Messages API, including token counting and batches (as `other`)."""

    name = "anthropic"
    provider_name = "anthropic"

    def claims(self, path: str) -> bool:
        return path == "/v1/messages" or path.startswith("/v1/messages/")

    def classify(self, method: str, path: str, query: str, body: Any) -> RequestInfo:
        info = RequestInfo()
        if isinstance(body, dict):
            read_request_params(info, body)
            # Structured outputs: `output_format: {"type": "json_schema", ...}`.
            if dig(body, "output_format", "type") == "json_schema":
                info.output_type = "json"
        if method.upper() == "POST" and path.partition("?")[0].rstrip("/").endswith("/v1/messages"):
            info.operation = "chat"
        return info

    def response_parser(
        self, record: CallRecord, content_type: str, content_encoding: str
    ) -> ResponseParser:
        if record.http_status is not None and record.http_status >= 400:
            return ErrorParser(record, content_encoding, anthropic_error_type)
        if is_event_stream(content_type):
            return MessagesStreamParser(record, content_encoding)
        return MessagesBodyParser(record, content_encoding)

    def carries_credentials(self, headers: Mapping[str, str], query: str) -> bool:
        """Anthropic's clients send `anthropic-version` beside their key on every call (the
        key header itself, `x-api-key` or `Authorization`, is one other APIs use too)."""
        return "anthropic-version" in headers

    def error_body(self, status: int, message: str) -> bytes:
        kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


def anthropic_error_type(body: Any) -> str | None:
    """`error.type` of an Anthropic error body or `error` event."""
    return as_str(dig(body, "error", "type"))


def apply_messages_usage(record: CallRecord, usage: Any) -> None:
    """Write a Messages `usage` object; input includes cache reads and cache writes."""
    if not isinstance(usage, dict):
        return
    uncached = as_int(usage.get("input_tokens"))
    cache_read = as_int(usage.get("cache_read_input_tokens"))
    cache_creation = as_int(usage.get("cache_creation_input_tokens"))
    if uncached is not None or cache_read is not None or cache_creation is not None:
        record.input_tokens = (uncached or 0) + (cache_read or 0) + (cache_creation or 0)
    record.cache_read_tokens = cache_read
    record.cache_creation_tokens = cache_creation
    record.output_tokens = as_int(usage.get("output_tokens"))


def _message_text(content: Any) -> str | None:
    """The joined text blocks of a message's `content`."""
    if not isinstance(content, list):
        return None
    return "".join(
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    )


class MessagesBodyParser(BodyParser):
    """A whole Message (or a token count, which carries no usage)."""

    def on_json(self, body: Any) -> None:
        if not isinstance(body, dict):
            return
        record = self.record
        record.response_id = as_str(body.get("id"))
        record.response_model = as_str(body.get("model"))
        reason = as_str(body.get("stop_reason"))
        if reason is not None:
            record.finish_reasons = [reason]
        apply_messages_usage(record, body.get("usage"))
        if record.options.keep_output:
            content = body.get("content")
            record.output_text = _message_text(content)
            record.output_tool_calls = [
                f"{block.get('name')}\0{orjson.dumps(block.get('input')).decode()}"
                for block in (content if isinstance(content, list) else ())
                if isinstance(block, dict) and block.get("type") == "tool_use"
            ]


class MessagesStreamParser(StreamParser):
    """A Messages stream: every `content_block_delta` is an output chunk.

    Decodes only `message_start` (id, model, input usage), `message_delta` (stop reason,
    final usage incl. output) and `error`. Complete once `message_stop` was seen.
    """

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._stopped = False
        self._usage: dict[str, Any] = {}
        self._text: list[str] | None = [] if record.options.keep_output else None
        self._tools: list[list[str]] = []

    @property
    def complete(self) -> bool:
        return self._stopped

    def on_event(self, event: bytes | None, data: bytes, now: float) -> None:
        kind = event_type(event, data)
        if kind == b"content_block_delta":
            self.mark_chunk(now)
            if self._text is not None:
                delta = dig(parse_json_body(data), "delta")
                if dig(delta, "type") == "text_delta" and isinstance(dig(delta, "text"), str):
                    self._text.append(delta["text"])
                partial = dig(delta, "partial_json")
                if self._tools and isinstance(partial, str):
                    self._tools[-1][1] += partial
        elif kind == b"content_block_start" and self._text is not None:
            block = dig(parse_json_body(data), "content_block")
            if dig(block, "type") == "tool_use":
                self._tools.append([str(dig(block, "name")), ""])
        elif kind == b"message_start":
            message = dig(parse_json_body(data), "message")
            record = self.record
            record.response_id = as_str(dig(message, "id"))
            record.response_model = as_str(dig(message, "model"))
            usage = dig(message, "usage")
            if isinstance(usage, dict):
                # Its output count is a placeholder: only message_delta's is real.
                self._add_usage({**usage, "output_tokens": None})
        elif kind == b"message_delta":
            delta = parse_json_body(data)
            reason = as_str(dig(delta, "delta", "stop_reason"))
            if reason is not None:
                self.record.finish_reasons = [reason]
            self._add_usage(dig(delta, "usage"))
        elif kind == b"message_stop":
            self._stopped = True
        elif kind == b"error":
            self.record.provider_error_type = anthropic_error_type(parse_json_body(data))

    def _add_usage(self, usage: Any) -> None:
        """Merge usage counts: `message_delta` carries cumulative counts that replace earlier."""
        if not isinstance(usage, dict):
            return
        self._usage.update((key, value) for key, value in usage.items() if value is not None)
        apply_messages_usage(self.record, self._usage)

    def finish(self) -> None:
        if self._text is not None:
            self.record.output_text = "".join(self._text)
            self.record.output_tool_calls = [
                f"{name}\0{arguments}" for name, arguments in self._tools
            ]
