"""The Gemini API (`/{v1|v1beta}/models/{model}:{method}`): requests, bodies, streams, errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson

from sidecar.protocols.interface import WireProtocol
from sidecar.protocols.jsonfields import (
    as_float,
    as_int,
    as_str,
    as_str_tuple,
    dig,
    is_event_stream,
    parse_json_body,
)
from sidecar.protocols.parsers import (
    BodyParser,
    ErrorParser,
    FinishReasons,
    ResponseParser,
    StreamParser,
)
from sidecar.record import CallRecord, RequestInfo

_PREFIXES = ("/v1beta/", "/v1alpha/", "/upload/v1beta/")
OPERATIONS = {
    "generateContent": "generate_content",
    "streamGenerateContent": "generate_content",
    "embedContent": "embeddings",
    "batchEmbedContents": "embeddings",
}

# An event carries output when a part holds non-empty text (thoughts too) or a call.
_OUTPUT = re.compile(
    rb'"text"\s*:\s*"[^"]|"(?:functionCall|inlineData|executableCode|codeExecutionResult)"\s*:'
)
# Events worth decoding after the first: a finish reason, a blocked prompt, an error.
_FACTS = re.compile(rb'"(?:finishReason|blockReason|error)"\s*:')
_USAGE = b'"usageMetadata"'
_QUERY_KEY = re.compile(r"(?:^|&)key=AIza")
_ARRAY_SEPARATOR = b"\n,"

# error.status of the errors the sidecar itself answers with.
_ERROR_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class GeminiProtocol(WireProtocol):
    """The Gemini Developer API and its `v1`/`v1alpha` variants."""

    name = "gemini"
    provider_name = "gcp.gemini"

    def claims(self, path: str) -> bool:
        if path.startswith(_PREFIXES) or path in ("/v1beta", "/v1alpha"):
            return True
        return path.startswith("/v1/models/") and ":" in unquote(path)

    def classify(self, method: str, path: str, query: str, body: Any) -> RequestInfo:
        info = RequestInfo()
        model, call = gemini_call(path)
        info.request_model = model
        if method.upper() == "POST" and call in OPERATIONS:
            info.operation = OPERATIONS[call]
            info.stream = call == "streamGenerateContent"
        if isinstance(body, dict):
            read_generation_config(info, body)
        return info

    def response_parser(
        self, record: CallRecord, content_type: str, content_encoding: str
    ) -> ResponseParser:
        if record.http_status is not None and record.http_status >= 400:
            return ErrorParser(record, content_encoding, gemini_error_type)
        if is_event_stream(content_type):
            return GeminiStreamParser(record, content_encoding)
        return GeminiBodyParser(record, content_encoding)

    def carries_credentials(self, headers: Mapping[str, str], query: str) -> bool:
        """An API key in `x-goog-api-key` or `?key=` (Google API keys begin `AIza`)."""
        return "x-goog-api-key" in headers or _QUERY_KEY.search(query) is not None

    def error_body(self, status: int, message: str) -> bytes:
        kind = _ERROR_STATUSES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        return orjson.dumps({"error": {"code": status, "message": message, "status": kind}})


def gemini_call(path: str) -> tuple[str | None, str]:
    """(model, method) of `/v1beta/models/{model}:{method}`; (None, "") for other paths."""
    resource, colon, method = unquote(path.partition("?")[0]).rpartition(":")
    if not colon or "/" in method:
        return None, ""
    at = resource.rfind("/models/")
    # Outside `models/` (e.g. /v1beta/tunedModels/{name}) the collection stays in the name.
    model = resource[at + 8 :] if at >= 0 else resource.lstrip("/").partition("/")[2]
    return (model or None), method


def read_generation_config(info: RequestInfo, body: dict[str, Any]) -> None:
    """Sampling parameters from `generationConfig` (camelCase or snake_case)."""
    config = body.get("generationConfig", body.get("generation_config"))
    if not isinstance(config, dict):
        return

    def field(camel: str, snake: str) -> Any:
        return config.get(camel, config.get(snake))

    info.temperature = as_float(field("temperature", "temperature"))
    info.top_p = as_float(field("topP", "top_p"))
    info.max_tokens = as_int(field("maxOutputTokens", "max_output_tokens"))
    info.seed = as_int(field("seed", "seed"))
    info.choice_count = as_int(field("candidateCount", "candidate_count"))
    info.logprobs = field("responseLogprobs", "response_logprobs") is True
    info.top_k = as_int(field("topK", "top_k"))
    info.frequency_penalty = as_float(field("frequencyPenalty", "frequency_penalty"))
    info.presence_penalty = as_float(field("presencePenalty", "presence_penalty"))
    info.stop_sequences = as_str_tuple(field("stopSequences", "stop_sequences"))
    info.output_type = _output_type(
        field("responseModalities", "response_modalities"),
        field("responseMimeType", "response_mime_type"),
    )


def _output_type(modalities: Any, mime_type: Any) -> str | None:
    """gen_ai.output.type from the asked modalities (image, audio) or the response MIME type."""
    if isinstance(modalities, list):
        asked = {str(item).upper() for item in modalities}
        if "IMAGE" in asked:
            return "image"
        if "AUDIO" in asked:
            return "speech"
    if mime_type == "application/json":
        return "json"
    if mime_type == "text/plain":
        return "text"
    return None


def gemini_error_type(body: Any) -> str | None:
    """`error.status` of a Gemini error body (or of the first item of an error array)."""
    if isinstance(body, list) and body:
        body = body[0]
    return as_str(dig(body, "error", "status"))


def apply_gemini_usage(record: CallRecord, usage: Any) -> None:
    """Write `usageMetadata`: input includes cached and tool-use prompt tokens, output
    includes thoughts. A count Gemini leaves out adds 0 to a sum it is part of."""
    if not isinstance(usage, dict):
        return
    prompt = as_int(usage.get("promptTokenCount"))
    tool_prompt = as_int(usage.get("toolUsePromptTokenCount"))
    candidates = as_int(usage.get("candidatesTokenCount"))
    thoughts = as_int(usage.get("thoughtsTokenCount"))
    if prompt is not None or tool_prompt is not None:
        record.input_tokens = (prompt or 0) + (tool_prompt or 0)
    record.cache_read_tokens = as_int(usage.get("cachedContentTokenCount"))
    if record.request.operation == "embeddings":
        return
    if candidates is not None or thoughts is not None:
        record.output_tokens = (candidates or 0) + (thoughts or 0)
    record.reasoning_tokens = thoughts


class GenerateContentReader:
    """Accumulates what a sequence of GenerateContentResponse objects says."""

    __slots__ = ("blocked", "reasons", "record", "text")

    def __init__(self, record: CallRecord) -> None:
        self.record = record
        self.reasons = FinishReasons(record)
        self.blocked = False
        self.text: list[str] | None = [] if record.options.keep_output else None

    def read(self, response: Any) -> None:
        """Take one decoded response object (a stream event or a body)."""
        if not isinstance(response, dict):
            return
        record = self.record
        if response.get("error") is not None:
            record.provider_error_type = gemini_error_type(response)
            return
        record.response_id = record.response_id or as_str(response.get("responseId"))
        record.response_model = record.response_model or as_str(response.get("modelVersion"))
        if dig(response, "promptFeedback", "blockReason") is not None:
            self.blocked = True
        candidates = response.get("candidates")
        if isinstance(candidates, list):
            for candidate in candidates:
                if isinstance(candidate, dict):
                    self._read_candidate(candidate)
        apply_gemini_usage(record, response.get("usageMetadata"))

    def _read_candidate(self, candidate: dict[str, Any]) -> None:
        self.reasons.add(candidate.get("index"), candidate.get("finishReason"))
        if as_int(candidate.get("index")) not in (0, None):
            return
        record = self.record
        if record.request.logprobs:
            chosen = dig(candidate, "logprobsResult", "chosenCandidates")
            if isinstance(chosen, list):
                record.add_logprobs(
                    entry.get("logProbability") for entry in chosen if isinstance(entry, dict)
                )
        parts = dig(candidate, "content", "parts")
        if self.text is None or not isinstance(parts, list):
            return
        for part in parts:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str) and not part.get("thought"):
                self.text.append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, dict):
                arguments = orjson.dumps(call.get("args"), option=orjson.OPT_SORT_KEYS).decode()
                record.output_tool_calls.append(f"{call.get('name')}\0{arguments}")

    @property
    def finished(self) -> bool:
        """Whether a candidate finished (or the prompt was blocked): the stream's end.

        Any one finish reason counts, not all `candidateCount` of them: a model that
        returns fewer candidates must not make a whole answer look cut short."""
        return self.blocked or len(self.reasons) > 0

    def output_text(self) -> str | None:
        """The first candidate's joined text, when content capture is on."""
        return None if self.text is None else "".join(self.text)


class GeminiBodyParser(BodyParser):
    """A GenerateContentResponse, an embedding, or the JSON array `streamGenerateContent`
    returns without `alt=sse` (whose elements with content are output chunks)."""

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        # The array element being received, while streaming; Google separates elements
        # with "\n,\r\n", and a pretty-printed line never starts with a comma otherwise.
        self._element: bytes | None = b"" if record.request.stream else None

    def feed_decoded(self, data: bytes, now: float) -> None:
        super().feed_decoded(data, now)
        if self._element is None:
            return
        *elements, self._element = (self._element + data).split(_ARRAY_SEPARATOR)
        if self._element.rstrip().endswith(b"]"):
            elements.append(self._element)
            self._element = b""
        for element in elements:
            if _OUTPUT.search(element) is not None:
                self.mark_chunk(now)

    def on_json(self, body: Any) -> None:
        reader = GenerateContentReader(self.record)
        for response in body if isinstance(body, list) else (body,):
            reader.read(response)
        self.record.output_text = reader.output_text()


class GeminiStreamParser(StreamParser):
    """A `streamGenerateContent?alt=sse` stream; every event with content is an output chunk.

    Decodes the first event (id, model), events with a finish reason, block reason or
    error, and at the end the last event with usage. Complete once a finish reason (or a
    prompt block reason) was seen.
    """

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._reader = GenerateContentReader(record)
        self._first = True
        self._pending_usage: bytes | None = None

    @property
    def complete(self) -> bool:
        return self._reader.finished

    def on_event(self, event: bytes | None, data: bytes, now: float) -> None:
        if _OUTPUT.search(data) is not None:
            self.mark_chunk(now)
        if _USAGE in data:
            self._pending_usage = data
        decode = (
            self._first
            or self._reader.text is not None
            or self.record.request.logprobs
            or _FACTS.search(data) is not None
        )
        if not decode:
            return
        self._first = False
        self._reader.read(parse_json_body(data))
        if self._pending_usage is data:
            self._pending_usage = None

    def finish(self) -> None:
        if self._pending_usage is not None:
            last = parse_json_body(self._pending_usage)
            apply_gemini_usage(self.record, dig(last, "usageMetadata"))
            self._pending_usage = None
        self.record.output_text = self._reader.output_text()
