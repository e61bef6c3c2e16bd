"""Ollama's native API (`/api/chat`, `/api/generate`, `/api/embed`, ...): requests, NDJSON
streams, whole bodies and errors.

Chat and generate stream by default: one JSON object a line, the last with `done: true`, the
`done_reason` and the counts. Input tokens are `prompt_eval_count` (Ollama leaves out prompt
tokens it found in its cache), output tokens `eval_count` (hidden reasoning included, as the
conventions count output). The first line that carries content is the first chunk.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from sidecar.protocols.interface import WireProtocol
from sidecar.protocols.jsonfields import as_float, as_int, as_str, dig, parse_json_body
from sidecar.protocols.ndjson import LineStreamParser, is_ndjson
from sidecar.protocols.parsers import BodyParser, ErrorParser, ResponseParser
from sidecar.record import CallRecord, RequestInfo

# The native API's endpoints under /api/ (blobs/{digest} too); other /api/ paths are not
# Ollama's (OpenRouter's base URL, for one, ends in /api/v1).
_ENDPOINTS = frozenset(
    (
        "chat",
        "generate",
        "embed",
        "embeddings",
        "show",
        "tags",
        "ps",
        "version",
        "pull",
        "push",
        "create",
        "copy",
        "delete",
    )
)
_OPERATIONS = {
    "chat": "chat",
    "generate": "text_completion",
    "embed": "embeddings",
    "embeddings": "embeddings",
}
_STREAMING = frozenset(("chat", "generate"))

# A line carries output when its message or response holds text (thinking too) or a call.
_OUTPUT = re.compile(rb'"(?:content|response|thinking)"\s*:\s*"[^"]|"tool_calls"\s*:\s*\[\s*\{')
# Lines worth decoding after the first: the last one, and errors.
_FACTS = re.compile(rb'"done"\s*:\s*true|"error"\s*:')


def ollama_endpoint(path: str) -> str | None:
    """`chat`, `generate`, `embed`, ... for a native API path; None for other paths."""
    path = path.partition("?")[0].rstrip("/")
    if not path.startswith("/api/"):
        return None
    rest = path[5:]
    if rest in _ENDPOINTS:
        return rest
    return "blobs" if rest.startswith("blobs/") else None


class OllamaProtocol(WireProtocol):
    """Ollama's native API."""

    name = "ollama"
    provider_name = "ollama"

    def claims(self, path: str) -> bool:
        return ollama_endpoint(path) is not None

    def classify(self, method: str, path: str, query: str, body: Any) -> RequestInfo:
        info = RequestInfo()
        endpoint = ollama_endpoint(path)
        fields = body if isinstance(body, dict) else {}
        info.request_model = as_str(fields.get("model")) or as_str(fields.get("name"))
        options = fields.get("options")
        if isinstance(options, dict):
            info.temperature = as_float(options.get("temperature"))
            info.top_p = as_float(options.get("top_p"))
            info.max_tokens = as_int(options.get("num_predict"))
            info.seed = as_int(options.get("seed"))
        info.logprobs = fields.get("logprobs") is True
        if endpoint in _OPERATIONS and method.upper() == "POST":
            info.operation = _OPERATIONS[endpoint]
            info.stream = endpoint in _STREAMING and fields.get("stream") is not False
        return info

    def response_parser(
        self, record: CallRecord, content_type: str, content_encoding: str
    ) -> ResponseParser:
        if record.http_status is not None and record.http_status >= 400:
            return ErrorParser(record, content_encoding, _no_error_type)
        if is_ndjson(content_type):
            return OllamaStreamParser(record, content_encoding)
        return OllamaBodyParser(record, content_encoding)

    def error_body(self, status: int, message: str) -> bytes:
        """Ollama's error shape: `{"error": "..."}`."""
        return orjson.dumps({"error": message})


def _no_error_type(body: Any) -> str | None:
    """Ollama's errors carry only a message (not a bounded type)."""
    return None


class _Reader:
    """Accumulates what a chat or generate answer's objects say (lines or a whole body)."""

    __slots__ = ("done", "record", "text")

    def __init__(self, record: CallRecord) -> None:
        self.record = record
        self.done = False
        self.text: list[str] | None = [] if record.options.keep_output else None

    def read(self, answer: Any) -> None:
        """Take one decoded object: a stream line or a whole body."""
        if not isinstance(answer, dict):
            return
        record = self.record
        record.response_model = record.response_model or as_str(answer.get("model"))
        if record.request.logprobs:
            logprobs = answer.get("logprobs")
            if isinstance(logprobs, list):
                record.add_logprobs(
                    entry.get("logprob") for entry in logprobs if isinstance(entry, dict)
                )
        if self.text is not None:
            text = dig(answer, "message", "content")
            text = text if isinstance(text, str) else answer.get("response")
            if isinstance(text, str):
                self.text.append(text)
            calls = dig(answer, "message", "tool_calls")
            for call in calls if isinstance(calls, list) else ():
                function = dig(call, "function")
                if isinstance(function, dict):
                    arguments = orjson.dumps(function.get("arguments"), option=orjson.OPT_SORT_KEYS)
                    record.output_tool_calls.append(f"{function.get('name')}\0{arguments.decode()}")
        if answer.get("done") is True or "prompt_eval_count" in answer:
            self._read_counts(answer)

    def _read_counts(self, answer: dict[str, Any]) -> None:
        record = self.record
        self.done = self.done or answer.get("done") is True
        prompt = as_int(answer.get("prompt_eval_count"))
        if prompt is not None:
            record.input_tokens = prompt
        if record.request.operation != "embeddings":
            record.output_tokens = as_int(answer.get("eval_count"))
        reason = as_str(answer.get("done_reason"))
        if reason is not None:
            record.finish_reasons = [reason]

    def output_text(self) -> str | None:
        return None if self.text is None else "".join(self.text)


class OllamaBodyParser(BodyParser):
    """A whole answer (`"stream": false`), an embedding, or any other native API body."""

    def on_json(self, body: Any) -> None:
        reader = _Reader(self.record)
        reader.read(body)
        if reader.text is not None and reader.text:
            self.record.output_text = reader.output_text()


class OllamaStreamParser(LineStreamParser):
    """A chat or generate NDJSON stream: every line with content is an output chunk.

    Decodes the first line (model), the last (`done: true`: counts and reason) and errors,
    every line only when content or logprobs are wanted. Complete once `done: true` was seen.
    """

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._reader = _Reader(record)
        self._first = True
        self._every_line = self._reader.text is not None or record.request.logprobs

    @property
    def complete(self) -> bool:
        return self._reader.done

    def on_line(self, line: bytes, now: float) -> None:
        if _OUTPUT.search(line) is not None:
            self.mark_chunk(now)
        if self._first or self._every_line or _FACTS.search(line) is not None:
            self._first = False
            self._reader.read(parse_json_body(line))

    def finish(self) -> None:
        super().finish()
        if self._reader.text is not None:
            self.record.output_text = self._reader.output_text()
