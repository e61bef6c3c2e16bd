"""OpenAI's Responses API (`/v1/responses`): its body and its typed event stream."""

from __future__ import annotations

from typing import Any

from sidecar.protocols.jsonfields import as_int, as_str, dig, event_type, parse_json_body
from sidecar.protocols.openai_chat import openai_error_type, read_service_facts
from sidecar.protocols.parsers import BodyParser, StreamParser
from sidecar.record import CallRecord

# Events whose `response` object says how the response ended.
_TERMINAL_EVENTS = frozenset((b"response.completed", b"response.failed", b"response.incomplete"))
# Events whose `response` object names the response before output starts.
_OPENING_EVENTS = frozenset((b"response.created", b"response.in_progress", b"response.queued"))


def read_response(record: CallRecord, response: Any) -> None:
    """Write id, model, finish reason, usage and error of a Responses API object."""
    if not isinstance(response, dict):
        return
    record.response_id = as_str(response.get("id")) or record.response_id
    record.response_model = as_str(response.get("model")) or record.response_model
    read_service_facts(record, response)
    reason = _finish_reason(response)
    if reason is not None:
        record.finish_reasons = [reason]
    usage = response.get("usage")
    if isinstance(usage, dict):
        record.input_tokens = as_int(usage.get("input_tokens"))
        record.output_tokens = as_int(usage.get("output_tokens"))
        record.cache_read_tokens = as_int(dig(usage, "input_tokens_details", "cached_tokens"))
        record.reasoning_tokens = as_int(dig(usage, "output_tokens_details", "reasoning_tokens"))
    error = response.get("error")
    if isinstance(error, dict):
        record.provider_error_type = as_str(error.get("code")) or as_str(error.get("type"))


def _finish_reason(response: dict[str, Any]) -> str | None:
    """A chat-style finish reason from `status` and `incomplete_details`."""
    status = response.get("status")
    if status == "completed":
        output = response.get("output")
        if isinstance(output, list) and any(
            isinstance(item, dict) and item.get("type") == "function_call" for item in output
        ):
            return "tool_calls"
        return "stop"
    if status == "incomplete":
        return as_str(dig(response, "incomplete_details", "reason")) or "incomplete"
    if status in ("failed", "cancelled"):
        return str(status)
    return None


def response_output_text(response: Any) -> str | None:
    """The joined `output_text` parts of a Responses API object's message items."""
    output = dig(response, "output")
    if not isinstance(output, list):
        return None
    parts: list[str] = []
    for item in output:
        content = dig(item, "content") if dig(item, "type") == "message" else None
        if not isinstance(content, list):
            continue
        for part in content:
            text = dig(part, "text")
            if dig(part, "type") == "output_text" and isinstance(text, str):
                parts.append(text)
    return "".join(parts)


def response_logprobs(response: Any) -> list[Any]:
    """Token logprobs of the `output_text` parts of a Responses API object's first message."""
    output = dig(response, "output")
    if not isinstance(output, list):
        return []
    for item in output:
        content = dig(item, "content") if dig(item, "type") == "message" else None
        if isinstance(content, list):
            return [
                entry.get("logprob")
                for part in content
                if dig(part, "type") == "output_text" and isinstance(dig(part, "logprobs"), list)
                for entry in part["logprobs"]
                if isinstance(entry, dict)
            ]
    return []


class ResponsesBodyParser(BodyParser):
    """A whole Responses API object."""

    def on_json(self, body: Any) -> None:
        read_response(self.record, body)
        if self.record.request.logprobs:
            self.record.add_logprobs(response_logprobs(body))
        if self.record.options.keep_output:
            self.record.output_text = response_output_text(body)


class ResponsesStreamParser(StreamParser):
    """A Responses API stream: every `*.delta` event is an output chunk.

    Decodes only the opening event (id, model), the terminal event (usage, status) and
    errors. Complete once `response.completed`, `.failed` or `.incomplete` was seen.
    """

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._terminal = False
        self._text: list[str] | None = [] if record.options.keep_output else None

    @property
    def complete(self) -> bool:
        return self._terminal

    def on_event(self, event: bytes | None, data: bytes, now: float) -> None:
        kind = event_type(event, data)
        if kind.endswith(b".delta"):
            self.mark_chunk(now)
            wanted = self._text is not None or self.record.request.logprobs
            if wanted and kind == b"response.output_text.delta":
                event = parse_json_body(data)
                delta = dig(event, "delta")
                if self._text is not None and isinstance(delta, str):
                    self._text.append(delta)
                logprobs = dig(event, "logprobs")
                if self.record.request.logprobs and isinstance(logprobs, list):
                    self.record.add_logprobs(
                        entry.get("logprob") for entry in logprobs if isinstance(entry, dict)
                    )
        elif kind in _TERMINAL_EVENTS:
            self._terminal = True
            read_response(self.record, dig(parse_json_body(data), "response"))
        elif kind in _OPENING_EVENTS:
            if self.record.response_id is None:
                read_response(self.record, dig(parse_json_body(data), "response"))
        elif kind == b"error":
            self.record.provider_error_type = openai_error_type(parse_json_body(data))

    def finish(self) -> None:
        if self._text is not None:
            self.record.output_text = "".join(self._text)
