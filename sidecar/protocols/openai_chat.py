"""OpenAI chat completions, completions and embeddings responses, and OpenAI's error shape.

A stream's first chunk, for `time_to_first_chunk`, is the first event that carries
generated output (text, reasoning, refusal or tool-call arguments): the role-only chunk
OpenAI sends before generation starts says nothing about how soon output arrives. Every
protocol follows this rule (Responses API `*.delta`, Anthropic `content_block_delta`,
Gemini events with non-empty parts).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from sidecar.protocols.jsonfields import as_int, as_str, dig, json_object_end, parse_json_body
from sidecar.protocols.parsers import BodyParser, FinishReasons, StreamParser
from sidecar.record import CallRecord

# A chunk carries output when one of these fields holds a non-empty string or a tool call.
_OUTPUT = re.compile(
    rb'"(?:content|text|refusal|reasoning_content|reasoning)"\s*:\s*"[^"]'
    rb'|"tool_calls"\s*:\s*\[\s*\{|"function_call"\s*:\s*\{'
)
# Chunks worth decoding after the first: a finish reason, usage, or an error.
_FACTS = re.compile(rb'"finish_reason"\s*:\s*"|"usage"\s*:\s*\{|"error"\s*:')
# Chunks to decode when the request asked for logprobs.
_LOGPROBS = re.compile(rb'"logprobs"\s*:\s*\{')
# How many leading chunks to decode while looking for the response id and model
# (Azure's first chunk carries only prompt filter results, with both empty).
_ID_PROBES = 3

# For bodies too large to decode: usage fields found by scanning the tail.
_MODEL_FIELD = re.compile(rb'"model"\s*:\s*"([^"\\]+)"')
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')


def openai_error_type(body: Any) -> str | None:
    """The error type of an OpenAI(-compatible) error body: `error.type`, else `error.code`."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        source = error
    elif body.get("object") == "error" or body.get("type") == "error":
        source = body  # vLLM's flat error, or a Responses API `error` event
    else:
        return None
    kind = as_str(source.get("type"))
    if kind is not None and kind != "error":
        return kind
    code = source.get("code")
    if isinstance(code, bool) or not isinstance(code, (str, int)) or code == "":
        return None
    return str(code)


def apply_chat_usage(record: CallRecord, usage: Any) -> None:
    """Write a chat/completions/embeddings `usage` object (embeddings have no output), or an
    audio transcription's token usage (`"type": "tokens"`)."""
    if not isinstance(usage, dict):
        return
    if usage.get("type") == "tokens" and "prompt_tokens" not in usage:
        record.input_tokens = as_int(usage.get("input_tokens"))
        record.output_tokens = as_int(usage.get("output_tokens"))
        record.input_audio_tokens = as_int(dig(usage, "input_token_details", "audio_tokens"))
        return
    record.input_tokens = as_int(usage.get("prompt_tokens"))
    if record.request.operation != "embeddings":
        record.output_tokens = as_int(usage.get("completion_tokens"))
    record.cache_read_tokens = as_int(dig(usage, "prompt_tokens_details", "cached_tokens"))
    record.reasoning_tokens = as_int(dig(usage, "completion_tokens_details", "reasoning_tokens"))


def read_service_facts(record: CallRecord, body: dict[str, Any]) -> None:
    """The service tier that served a response and its system fingerprint, where present."""
    record.response_service_tier = as_str(body.get("service_tier")) or record.response_service_tier
    record.system_fingerprint = as_str(body.get("system_fingerprint")) or record.system_fingerprint


def choice_logprobs(choice: dict[str, Any]) -> list[Any]:
    """Token logprobs of a chat choice (`logprobs.content`) or a completion choice
    (`logprobs.token_logprobs`); [] when there are none."""
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        return []
    content = logprobs.get("content")
    if isinstance(content, list):
        return [entry.get("logprob") for entry in content if isinstance(entry, dict)]
    tokens = logprobs.get("token_logprobs")
    return tokens if isinstance(tokens, list) else []


def _tool_call_parts(calls: Any) -> list[tuple[int, str, str]]:
    """(index, name piece, arguments piece) of each (delta or whole) tool call in `calls`."""
    parts = []
    if isinstance(calls, list):
        for position, call in enumerate(calls):
            function = dig(call, "function")
            if not isinstance(function, dict):
                continue
            name = function.get("name")
            arguments = function.get("arguments")
            parts.append(
                (
                    as_int(dig(call, "index")) or position,
                    name if isinstance(name, str) else "",
                    arguments if isinstance(arguments, str) else "",
                )
            )
    return parts


def _choice_text(choice: dict[str, Any], *keys: str) -> str | None:
    """The first choice's text at `keys` (None for other choices or non-text)."""
    if as_int(choice.get("index")) not in (0, None):
        return None
    text = dig(choice, *keys)
    return text if isinstance(text, str) else None


class ChatBodyParser(BodyParser):
    """A whole chat completion, text completion or embeddings response."""

    def on_json(self, body: Any) -> None:
        if not isinstance(body, dict):
            return
        record = self.record
        record.response_id = as_str(body.get("id"))
        record.response_model = as_str(body.get("model"))
        read_service_facts(record, body)
        reasons = FinishReasons(record)
        choices = body.get("choices")
        if isinstance(choices, list):
            for position, choice in enumerate(choices):
                if not isinstance(choice, dict):
                    continue
                reasons.add(choice.get("index", position), choice.get("finish_reason"))
                if as_int(choice.get("index", position)) != 0:
                    continue
                if record.request.logprobs:
                    record.add_logprobs(choice_logprobs(choice))
                if record.options.keep_output and record.output_text is None:
                    text = _choice_text(choice, "message", "content")
                    record.output_text = text if text is not None else _choice_text(choice, "text")
                    record.output_tool_calls = [
                        f"{name}\0{arguments}"
                        for _, name, arguments in _tool_call_parts(
                            dig(choice, "message", "tool_calls")
                        )
                    ]
        apply_chat_usage(record, body.get("usage"))

    def on_oversized(self, head: bytes, tail: bytes) -> None:
        record = self.record
        model = _MODEL_FIELD.search(head) or _MODEL_FIELD.search(tail)
        if model is not None:
            record.response_model = model.group(1).decode("utf-8", "replace")
        matches = list(_USAGE_OBJECT.finditer(tail))
        if not matches:
            return
        usage = matches[-1]  # the response's own usage comes last
        end = json_object_end(tail, usage.end() - 1)
        if end > 0:
            apply_chat_usage(record, parse_json_body(tail[usage.end() - 1 : end]))


class ChatStreamParser(StreamParser):
    """A chat/completions stream: decodes only the chunks that carry facts.

    Complete once `data: [DONE]` follows at least one finish reason (llama.cpp sends an
    early `[DONE]` without one when it cuts a stream short).
    """

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._reasons = FinishReasons(record)
        self._done = False
        self._probes = _ID_PROBES
        self._text: list[str] | None = [] if record.options.keep_output else None
        self._tools: dict[int, list[str]] = {}
        self._logprobs = record.request.logprobs

    @property
    def complete(self) -> bool:
        return self._done and len(self._reasons) > 0

    def on_event(self, event: bytes | None, data: bytes, now: float) -> None:
        if data[:1] != b"{":
            if data.strip() == b"[DONE]":
                self._done = True
            return
        if _OUTPUT.search(data) is not None:
            self.mark_chunk(now)
        if self._probes <= 0 and self._text is None and _FACTS.search(data) is None:
            # The common chunk: content only. With logprobs asked for, only they are read
            # (decoding it whole and reading every field was ~half of the per-chunk parsing
            # in the issue #23 profile).
            if self._logprobs and _LOGPROBS.search(data) is not None:
                self._read_logprobs(data)
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if isinstance(chunk, dict):
            self._read(chunk)

    def _read_logprobs(self, data: bytes) -> None:
        """The first choice's token logprobs of a chunk that carries nothing else to read."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and as_int(choice.get("index")) in (0, None):
                    self.record.add_logprobs(choice_logprobs(choice))

    def _read(self, chunk: dict[str, Any]) -> None:
        record = self.record
        if self._probes > 0:
            self._probes -= 1
            record.response_id = record.response_id or as_str(chunk.get("id"))
            record.response_model = record.response_model or as_str(chunk.get("model"))
            read_service_facts(record, chunk)
            if record.response_id is not None and record.response_model is not None:
                self._probes = 0
        if chunk.get("error") is not None:
            record.provider_error_type = openai_error_type(chunk)
            return
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                self._reasons.add(choice.get("index"), choice.get("finish_reason"))
                if as_int(choice.get("index")) not in (0, None):
                    continue
                if self._logprobs:
                    record.add_logprobs(choice_logprobs(choice))
                if self._text is not None:
                    text = _choice_text(choice, "delta", "content")
                    text = text if text is not None else _choice_text(choice, "text")
                    if text:
                        self._text.append(text)
                    for index, name, arguments in _tool_call_parts(
                        dig(choice, "delta", "tool_calls")
                    ):
                        self._tools.setdefault(index, ["", ""])
                        self._tools[index][0] += name
                        self._tools[index][1] += arguments
        apply_chat_usage(record, chunk.get("usage"))

    def finish(self) -> None:
        if self._text is not None:
            self.record.output_text = "".join(self._text)
            self.record.output_tool_calls = [
                f"{name}\0{arguments}"
                for name, arguments in (self._tools[index] for index in sorted(self._tools))
            ]
