"""OpenAI's wire protocol: chat completions, completions, embeddings and the Responses API."""

from __future__ import annotations

import re
from typing import Any

import orjson

from sidecar.protocols.interface import StreamFilter, WireProtocol
from sidecar.protocols.jsonfields import (
    as_int,
    as_str,
    as_str_tuple,
    dig,
    is_event_stream,
    parse_json_body,
    read_request_params,
)
from sidecar.protocols.openai_chat import ChatBodyParser, ChatStreamParser, openai_error_type
from sidecar.protocols.openai_filter import InjectedFieldsFilter, without_logprobs
from sidecar.protocols.openai_responses import ResponsesBodyParser, ResponsesStreamParser
from sidecar.protocols.parsers import ErrorParser, ResponseParser
from sidecar.record import CallRecord, RequestInfo

# The last path segments that name an endpoint, with or without an upstream prefix.
_ENDPOINT = re.compile(r"/v1/(chat/completions|completions|embeddings|responses)/?$")
OPERATIONS = {
    "chat/completions": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "responses": "chat",
}
# `openai.api.type` of the endpoints the conventions name.
API_TYPES = {"chat/completions": "chat_completions", "responses": "responses"}
# response_format / text.format types, as gen_ai.output.type.
_OUTPUT_TYPES = {"json_object": "json", "json_schema": "json", "text": "text"}
# The Realtime API's WebSocket path (with or without an upstream prefix).
REALTIME_PATH = "/v1/realtime"
_STANDARD_PATHS = frozenset(
    ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", REALTIME_PATH)
)

# (error.type, error.code) of the errors the sidecar itself answers with.
_ERROR_SHAPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}


class OpenAIProtocol(WireProtocol):
    """OpenAI and OpenAI-compatible servers (vLLM, llama.cpp, Ollama, Azure OpenAI ...)."""

    name = "openai"
    provider_name = "openai"

    def claims(self, path: str) -> bool:
        return path in _STANDARD_PATHS or path.startswith("/v1/responses/")

    def accepts_websocket(self, path: str) -> bool:
        return path == REALTIME_PATH

    def classify(self, method: str, path: str, query: str, body: Any) -> RequestInfo:
        info = RequestInfo()
        endpoint = openai_endpoint(path)
        if isinstance(body, dict):
            read_request_params(info, body)
            info.logprobs = asks_for_logprobs(body)
            _read_openai_params(info, body)
        if endpoint is not None:
            info.api_type = API_TYPES.get(endpoint)
            if method.upper() == "POST":
                info.operation = OPERATIONS[endpoint]
        return info

    def response_parser(
        self, record: CallRecord, content_type: str, content_encoding: str
    ) -> ResponseParser:
        if record.http_status is not None and record.http_status >= 400:
            return ErrorParser(record, content_encoding, openai_error_type)
        responses = record.request.api_type == "responses"
        if is_event_stream(content_type):
            if responses:
                return ResponsesStreamParser(record, content_encoding)
            return ChatStreamParser(record, content_encoding)
        if responses:
            return ResponsesBodyParser(record, content_encoding)
        return ChatBodyParser(record, content_encoding)

    def error_body(self, status: int, message: str) -> bytes:
        kind, code = _ERROR_SHAPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        error = {"message": message, "type": kind, "param": None, "code": code}
        return orjson.dumps({"error": error})

    def inject_stream_usage(self, info: RequestInfo, body: Any, raw_body: bytes) -> bytes | None:
        """Ask for a final usage chunk on chat/completions streams that did not ask for one.

        Only chat (`messages`) and text completion bodies: the Responses API always reports
        usage and rejects `include_usage`.
        """
        if not info.stream or not isinstance(body, dict):
            return None
        if info.operation != "text_completion" and not (
            info.operation == "chat" and "messages" in body
        ):
            return None
        if "stream_options" not in body:
            end = raw_body.rfind(b"}")
            if end < 0:
                return None
            return raw_body[:end] + b',"stream_options":{"include_usage":true}' + raw_body[end:]
        options = body["stream_options"]
        if isinstance(options, dict) and options.get("include_usage") is True:
            return None
        merged = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        try:
            return orjson.dumps({**body, "stream_options": merged})
        except TypeError:
            return None

    def inject_logprobs(self, info: RequestInfo, body: Any, raw_body: bytes) -> bytes | None:
        """Ask a chat completion for logprobs the app did not ask for (None: not possible)."""
        if info.logprobs or info.operation != "chat" or not isinstance(body, dict):
            return None
        if "messages" not in body or body.get("top_logprobs") not in (None, 0):
            return None
        if "logprobs" not in body:
            end = raw_body.rfind(b"}")
            if end < 0:
                return None
            return raw_body[:end] + b',"logprobs":true' + raw_body[end:]
        current = parse_json_body(raw_body)  # may already carry injected stream_options
        if not isinstance(current, dict):
            return None
        return orjson.dumps({**current, "logprobs": True})

    def stream_filter(self, *, usage: bool = True, logprobs: bool = False) -> StreamFilter:
        return InjectedFieldsFilter(usage=usage, logprobs=logprobs)

    def body_without_logprobs(self, body: bytes) -> bytes:
        return without_logprobs(body)


def _read_openai_params(info: RequestInfo, body: dict[str, Any]) -> None:
    """Service tier, output type, conversation and embeddings fields of an OpenAI request."""
    info.service_tier = as_str(body.get("service_tier"))
    modalities = body.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        info.output_type = "speech"
    else:
        kind = dig(body, "response_format", "type") or dig(body, "text", "format", "type")
        info.output_type = _OUTPUT_TYPES.get(kind) if isinstance(kind, str) else None
    conversation = body.get("conversation")
    info.conversation_id = as_str(conversation) or as_str(dig(conversation, "id"))
    info.previous_response_id = as_str(body.get("previous_response_id"))
    info.encoding_formats = as_str_tuple(body.get("encoding_format"))
    info.dimensions = as_int(body.get("dimensions"))


def asks_for_logprobs(body: dict[str, Any]) -> bool:
    """Whether a chat, completions or Responses request asks for token logprobs."""
    logprobs = body.get("logprobs")
    if logprobs is True or (isinstance(logprobs, int) and not isinstance(logprobs, bool)):
        return True  # chat: true; legacy completions: an int (0 included)
    include = body.get("include")
    return isinstance(include, list) and "message.output_text.logprobs" in include


def openai_endpoint(path: str) -> str | None:
    """`chat/completions`, `completions`, `embeddings` or `responses` for a path ending so."""
    match = _ENDPOINT.search(path.partition("?")[0])
    return match.group(1) if match else None
