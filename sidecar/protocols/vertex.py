"""Vertex AI: `/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/{publisher}/models/{m}:{call}`.

Gemini models (publisher `google`) speak Gemini's wire format; Claude models (publisher
`anthropic`) speak Anthropic's Messages format through `rawPredict` / `streamRawPredict`,
with the model only in the path (`claude-sonnet-4@20250514`) and `anthropic_version` in the
body. Vertex's front end answers some errors (401, 403, 429) in Google's shape even for
Claude, so an error's type is read from either shape. The text-embedding models answer
`predict` with a token count per input.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from sidecar.protocols.anthropic import (
    AnthropicProtocol,
    MessagesBodyParser,
    MessagesStreamParser,
)
from sidecar.protocols.gemini import GeminiProtocol
from sidecar.protocols.interface import WireProtocol
from sidecar.protocols.jsonfields import as_int, as_str, dig, is_event_stream, read_request_params
from sidecar.protocols.parsers import BodyParser, ErrorParser, ResponseParser
from sidecar.record import CallRecord, RequestInfo

_PREFIXES = ("/v1/projects/", "/v1beta1/")
_MODEL_PATH = re.compile(
    r"/(?:v1|v1beta1)/projects/[^/]+/locations/[^/]+/publishers/([^/]+)/models/([^/:]*)"
    r"(?::([A-Za-z]+))?/?$"
)
_CLAUDE_METHODS = frozenset(("rawPredict", "streamRawPredict"))
# Claude's token counting is a model of its own name; the model to count for is in the body.
_COUNT_TOKENS_MODEL = "count-tokens"


def vertex_call(path: str) -> tuple[str | None, str | None, str]:
    """(publisher, model, method) of a Vertex model path; (None, None, "") for other paths.
    The model is None when the path names none."""
    match = _MODEL_PATH.match(unquote(path.partition("?")[0]))
    if match is None:
        return None, None, ""
    publisher, model, method = match.groups()
    return publisher, model or None, method or ""


def vertex_error_type(body: Any) -> str | None:
    """The error type of a Vertex error: Anthropic's `error.type` or Google's `error.status`."""
    if isinstance(body, list) and body:
        body = body[0]
    return as_str(dig(body, "error", "type")) or as_str(dig(body, "error", "status"))


class VertexProtocol(WireProtocol):
    """Vertex AI's publisher models: Gemini's format for Google's, Anthropic's for Claude."""

    name = "vertex"
    provider_name = "gcp.vertex_ai"

    def __init__(self) -> None:
        self._gemini = GeminiProtocol()
        self._anthropic = AnthropicProtocol()

    def claims(self, path: str) -> bool:
        return path.startswith(_PREFIXES)

    def classify(self, method: str, path: str, query: str, body: Any) -> RequestInfo:
        publisher, model, call = vertex_call(path)
        if publisher != "anthropic":
            info = self._gemini.classify(method, path, query, body)
            if publisher is not None and call == "predict" and _embeds(body):
                info.operation = "embeddings" if method.upper() == "POST" else "other"
            return info
        info = RequestInfo()
        if isinstance(body, dict):
            read_request_params(info, body)
        if model == _COUNT_TOKENS_MODEL:
            return info
        info.request_model = model
        if method.upper() == "POST" and call in _CLAUDE_METHODS:
            info.operation = "chat"
            info.stream = info.stream or call == "streamRawPredict"
        return info

    def response_parser(
        self, record: CallRecord, content_type: str, content_encoding: str
    ) -> ResponseParser:
        if record.http_status is not None and record.http_status >= 400:
            return ErrorParser(record, content_encoding, vertex_error_type)
        publisher, _, call = vertex_call(record.path)
        if publisher == "anthropic":
            if is_event_stream(content_type):
                return MessagesStreamParser(record, content_encoding)
            return MessagesBodyParser(record, content_encoding)
        if call == "predict" and record.request.operation == "embeddings":
            return PredictEmbeddingsParser(record, content_encoding)
        return self._gemini.response_parser(record, content_type, content_encoding)

    def error_body(self, status: int, message: str) -> bytes:
        """Google's error shape, as Vertex's front end answers."""
        return self._gemini.error_body(status, message)


def _embeds(body: Any) -> bool:
    """Whether a `predict` body asks a text-embedding model (`instances` with `content`)."""
    instances = dig(body, "instances")
    return (
        isinstance(instances, list)
        and bool(instances)
        and all(isinstance(dig(item, "content"), str) for item in instances)
    )


class PredictEmbeddingsParser(BodyParser):
    """A text-embedding model's `predict` answer: input tokens are the sum of each
    prediction's `embeddings.statistics.token_count`."""

    def on_json(self, body: Any) -> None:
        predictions = dig(body, "predictions")
        if not isinstance(predictions, list):
            return
        counts = [
            as_int(dig(item, "embeddings", "statistics", "token_count")) for item in predictions
        ]
        known = [count for count in counts if count is not None]
        if known:
            self.record.input_tokens = sum(known)
