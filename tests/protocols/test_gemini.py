"""Gemini API: classification and the parsers, fed real response shapes."""

from __future__ import annotations

import orjson
import pytest

from sidecar.protocols.gemini import GeminiProtocol
from sidecar.protocols.parsers import BodyParser, StreamParser
from tests.helpers.wire import WAYS, new_record, parse

GEMINI = GeminiProtocol()
STREAM_PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
GENERATE_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
REQUEST = {
    "contents": [{"role": "user", "parts": [{"text": "Why is the sky blue?"}]}],
    "generationConfig": {"temperature": 0.4, "topP": 0.95, "maxOutputTokens": 256, "seed": 7},
}
SSE = "text/event-stream"
JSON = "application/json; charset=UTF-8"
_TAIL = b'"modelVersion": "gemini-2.5-flash","responseId": "mKyfaL2hKsOWz7IPk9-h4Ak"}'
_PROMPT_USAGE = (
    b'"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8,'
    b'"promptTokensDetails": [{"modality": "TEXT","tokenCount": 8}]},'
)
_FINAL_USAGE = (
    b'"usageMetadata": {"promptTokenCount": 8,"candidatesTokenCount": 12,'
    b'"totalTokenCount": 45,"cachedContentTokenCount": 4,"promptTokensDetails": '
    b'[{"modality": "TEXT","tokenCount": 8}],"thoughtsTokenCount": 25},'
)


def data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def candidate(parts: bytes, extra: bytes = b"", index: int = 0) -> bytes:
    return (
        b'{"content": {"parts": [' + parts + b'],"role": "model"},'
        + extra + b'"index": ' + str(index).encode() + b"}"
    )  # fmt: skip


# gemini-2.5-flash with thinking: a thought summary, two text events, the last with
# the finish reason and the full usage.
THINKING_STREAM = (
    data(
        b'{"candidates": ['
        + candidate(b'{"text": "**Considering light**\\nScattering...","thought": true}')
        + b"],"
        + _PROMPT_USAGE
        + _TAIL
    )
    + data(b'{"candidates": [' + candidate(b'{"text": "The sky is blue"}') + b"]," + _TAIL)
    + data(
        b'{"candidates": ['
        + candidate(b'{"text": " because of Rayleigh scattering."}', b'"finishReason": "STOP",')
        + b"],"
        + _FINAL_USAGE
        + _TAIL
    )
)

# Some models end with an empty-text event holding the finish reason, then usage alone.
TRAILING_USAGE_STREAM = (
    data(b'{"candidates": [' + candidate(b'{"text": "Blue."}') + b"]," + _PROMPT_USAGE + _TAIL)
    + data(
        b'{"candidates": ['
        + candidate(b'{"text": ""}', b'"finishReason": "STOP",')
        + b"],"
        + _PROMPT_USAGE
        + _TAIL
    )
    + data(b"{" + _FINAL_USAGE + _TAIL)
)


# --- routing and classification -------------------------------------------------


@pytest.mark.parametrize(
    ("path", "claimed"),
    [
        ("/v1beta/models/gemini-2.5-flash:generateContent", True),
        ("/v1beta/models", True),
        ("/v1beta/cachedContents", True),
        ("/v1alpha/models/gemini-2.0-flash-exp:streamGenerateContent", True),
        ("/upload/v1beta/files", True),
        ("/v1/models/gemini-2.5-pro:generateContent", True),
        ("/v1/models/gemini-2.5-pro%3AgenerateContent", True),
        ("/v1/models", False),
        ("/v1/models/gpt-4o", False),
        ("/v1/chat/completions", False),
        ("/v1betaX/models", False),
    ],
)
def test_claims(path: str, claimed: bool) -> None:
    assert GEMINI.claims(path) is claimed


@pytest.mark.parametrize(
    ("method", "path", "operation", "model", "stream"),
    [
        ("POST", GENERATE_PATH, "generate_content", "gemini-2.5-flash", False),
        ("POST", STREAM_PATH, "generate_content", "gemini-2.5-flash", True),
        (
            "POST",
            "/v1/models/gemini-2.5-pro:generateContent",
            "generate_content",
            "gemini-2.5-pro",
            False,
        ),
        (
            "POST",
            "/v1beta/models/gemini-2.5-flash%3AstreamGenerateContent",
            "generate_content",
            "gemini-2.5-flash",
            True,
        ),
        (
            "POST",
            "/v1beta/models/text-embedding-004:embedContent",
            "embeddings",
            "text-embedding-004",
            False,
        ),
        (
            "POST",
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
            "embeddings",
            "gemini-embedding-001",
            False,
        ),
        ("POST", "/v1beta/models/gemini-2.5-flash:countTokens", "other", "gemini-2.5-flash", False),
        (
            "POST",
            "/v1beta/tunedModels/sky-tuner-42:generateContent",
            "generate_content",
            "tunedModels/sky-tuner-42",
            False,
        ),
        ("GET", GENERATE_PATH, "other", "gemini-2.5-flash", False),
        ("GET", "/v1beta/models", "other", None, False),
        ("GET", "/v1beta/models/gemini-2.5-flash", "other", None, False),
        ("POST", "/v1beta/models/:generateContent", "generate_content", None, False),
    ],
)
def test_classify_path(
    method: str, path: str, operation: str, model: str | None, stream: bool
) -> None:
    info = GEMINI.classify(method, path, "alt=sse", REQUEST)
    assert (info.operation, info.request_model, info.stream) == (operation, model, stream)


def test_classify_generation_config() -> None:
    info = GEMINI.classify("POST", GENERATE_PATH, "", {**REQUEST})
    assert (info.temperature, info.top_p, info.max_tokens, info.seed) == (0.4, 0.95, 256, 7)
    assert info.choice_count is None
    assert not hasattr(info, "body")  # the decoded body never rides the request facts


def test_classify_snake_case_generation_config() -> None:
    body = {"contents": [], "generation_config": {"max_output_tokens": 64, "candidate_count": 2}}
    info = GEMINI.classify("POST", GENERATE_PATH, "", body)
    assert (info.max_tokens, info.choice_count) == (64, 2)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [REQUEST],
        "contents",
        {"generationConfig": [1, 2]},
        {"generationConfig": {"temperature": "warm", "maxOutputTokens": "256", "seed": None}},
    ],
)
def test_classify_never_raises_on_malformed_bodies(body: object) -> None:
    info = GEMINI.classify("POST", STREAM_PATH, "alt=sse", body)
    assert (info.operation, info.stream, info.request_model) == (
        "generate_content",
        True,
        "gemini-2.5-flash",
    )
    assert (info.temperature, info.max_tokens, info.seed) == (None, None, None)


# --- SSE streams ---------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_thinking_stream(way: str) -> None:
    record = new_record(GEMINI, STREAM_PATH, REQUEST, capture=True)
    parser = parse(GEMINI, record, SSE, THINKING_STREAM, way)
    assert isinstance(parser, StreamParser)
    assert parser.complete
    assert record.response_id == "mKyfaL2hKsOWz7IPk9-h4Ak"
    assert record.response_model == "gemini-2.5-flash"
    assert record.finish_reasons == ["STOP"]
    assert record.input_tokens == 8
    assert record.output_tokens == 12 + 25
    assert (record.reasoning_tokens, record.cache_read_tokens) == (25, 4)
    assert len(record.chunk_times) == 3  # the thought counts as output
    assert record.output_text == "The sky is blue because of Rayleigh scattering."


def test_google_crlf_framing() -> None:
    stream = THINKING_STREAM.replace(b"\n\n", b"\r\n\r\n")
    record = new_record(GEMINI, STREAM_PATH, REQUEST)
    parser = GEMINI.response_parser(record, SSE, "")
    for now, event in enumerate(stream.split(b"\r\n\r\n")[:-1], start=1):
        parser.feed(event + b"\r\n\r\n", float(now))
    parser.finish()
    assert parser.complete
    assert record.chunk_times == [1.0, 2.0, 3.0]
    assert record.first_chunk == 1.0


@pytest.mark.parametrize("way", ["whole", "bytewise", "gzip"])
def test_usage_after_the_finish_reason(way: str) -> None:
    record = new_record(GEMINI, STREAM_PATH, REQUEST)
    parser = parse(GEMINI, record, SSE, TRAILING_USAGE_STREAM, way)
    assert parser.complete
    assert record.finish_reasons == ["STOP"]
    assert (record.input_tokens, record.output_tokens, record.reasoning_tokens) == (8, 37, 25)
    assert len(record.chunk_times) == 1  # the empty text part is not output


def test_cut_stream_is_not_complete_and_has_no_output_count() -> None:
    cut = THINKING_STREAM[: THINKING_STREAM.rindex(b"data:")]
    record = new_record(GEMINI, STREAM_PATH, REQUEST)
    parser = parse(GEMINI, record, SSE, cut, "pieces")
    assert not parser.complete
    assert record.finish_reasons == []
    assert record.input_tokens == 8  # reported by the first event
    assert record.output_tokens is None


def test_several_candidates() -> None:
    both = b'{"candidates": [' + candidate(b'{"text": "A"}') + b","
    both += candidate(b'{"text": "B"}', index=1) + b"]," + _TAIL
    first_done = b'{"candidates": [' + candidate(b'{"text": "!"}', b'"finishReason": "STOP",')
    first_done += b"]," + _TAIL
    second_done = b'{"candidates": ['
    second_done += candidate(b'{"text": "?"}', b'"finishReason": "MAX_TOKENS",', index=1)
    second_done += b"]," + _FINAL_USAGE + _TAIL
    body = {**REQUEST, "generationConfig": {"candidateCount": 2}}

    record = new_record(GEMINI, STREAM_PATH, body, capture=True)
    parser = parse(GEMINI, record, SSE, data(both) + data(second_done) + data(first_done))
    assert parser.complete
    assert record.finish_reasons == ["STOP", "MAX_TOKENS"]  # by candidate index
    assert (record.input_tokens, record.output_tokens) == (8, 37)
    assert len(record.chunk_times) == 3
    assert record.output_text == "A!"  # the first candidate only

    # One finished candidate marks the end: a model may return fewer than asked for.
    record = new_record(GEMINI, STREAM_PATH, body)
    assert parse(GEMINI, record, SSE, data(both) + data(first_done)).complete
    record = new_record(GEMINI, STREAM_PATH, body)
    assert not parse(GEMINI, record, SSE, data(both)).complete


def test_blocked_prompt_is_a_complete_answer() -> None:
    blocked = data(
        b'{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},'
        b'"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7},' + _TAIL
    )
    record = new_record(GEMINI, STREAM_PATH, REQUEST)
    parser = parse(GEMINI, record, SSE, blocked)
    assert parser.complete
    assert record.finish_reasons == []
    assert (record.input_tokens, record.output_tokens) == (7, None)
    assert record.chunk_times == []


def test_function_call_is_output() -> None:
    stream = data(
        b'{"candidates": ['
        + candidate(
            b'{"functionCall": {"name": "get_weather","args": {"city": "Paris"}}}',
            b'"finishReason": "STOP",',
        )
        + b"],"
        + _FINAL_USAGE
        + _TAIL
    )
    record = new_record(GEMINI, STREAM_PATH, REQUEST)
    parser = parse(GEMINI, record, SSE, stream, "pieces")
    assert parser.complete
    assert len(record.chunk_times) == 1


def test_error_event_mid_stream() -> None:
    first = THINKING_STREAM[: THINKING_STREAM.index(b"data:", 10)]
    error = data(
        b'{"error": {"code": 503,"message": "The model is overloaded.","status": "UNAVAILABLE"}}'
    )
    record = new_record(GEMINI, STREAM_PATH, REQUEST)
    parser = parse(GEMINI, record, SSE, first + error, "bytewise")
    assert record.provider_error_type == "UNAVAILABLE"
    assert not parser.complete


# --- bodies ----------------------------------------------------------------------


def _response(parts: bytes, extra: bytes, usage: bytes) -> dict[str, object]:
    payload = b'{"candidates": [' + candidate(parts, extra) + b"]," + usage + _TAIL
    loaded: dict[str, object] = orjson.loads(payload)
    return loaded


GENERATE_BODY = orjson.dumps(
    _response(b'{"text": "The sky is blue."}', b'"finishReason": "STOP",', _FINAL_USAGE),
    option=orjson.OPT_INDENT_2,
)


@pytest.mark.parametrize("way", WAYS)
def test_generate_content_body(way: str) -> None:
    record = new_record(GEMINI, GENERATE_PATH, REQUEST, capture=True)
    parser = parse(GEMINI, record, JSON, GENERATE_BODY, way)
    assert isinstance(parser, BodyParser)
    assert record.response_id == "mKyfaL2hKsOWz7IPk9-h4Ak"
    assert record.response_model == "gemini-2.5-flash"
    assert record.finish_reasons == ["STOP"]
    assert (record.input_tokens, record.output_tokens) == (8, 37)
    assert (record.reasoning_tokens, record.cache_read_tokens) == (25, 4)
    assert record.output_text == "The sky is blue."


@pytest.mark.parametrize("way", WAYS)
def test_stream_without_alt_sse_is_a_json_array(way: str) -> None:
    items = [
        _response(b'{"text": "The sky"}', b"", _PROMPT_USAGE),
        _response(b'{"text": " is blue."}', b'"finishReason": "STOP",', _FINAL_USAGE),
    ]
    body = b"[" + b"\n,\r\n".join(orjson.dumps(i, option=orjson.OPT_INDENT_2) for i in items)
    body += b"]"
    record = new_record(GEMINI, STREAM_PATH, REQUEST, capture=True)
    parse(GEMINI, record, JSON, body, way)
    assert len(record.chunk_times) == 2  # each element with content is an output chunk
    assert record.finish_reasons == ["STOP"]
    assert (record.input_tokens, record.output_tokens, record.reasoning_tokens) == (8, 37, 25)
    assert record.output_text == "The sky is blue."


def test_array_elements_mark_chunks_as_they_complete() -> None:
    items = [
        _response(b'{"text": "The sky"}', b"", _PROMPT_USAGE),
        _response(b'{"text": ""}', b"", _PROMPT_USAGE),
        _response(b'{"text": " is blue."}', b'"finishReason": "STOP",', _FINAL_USAGE),
    ]
    record = new_record(GEMINI, STREAM_PATH, REQUEST)
    parser = GEMINI.response_parser(record, JSON, "")
    for now, item in enumerate(items, start=1):
        parser.feed(b"[" if now == 1 else b"\n,\r\n", float(now))
        parser.feed(orjson.dumps(item, option=orjson.OPT_INDENT_2), float(now))
    parser.feed(b"]", 9.0)
    parser.finish()
    # The first element completes when the separator after it arrives.
    assert record.chunk_times == [2.0, 9.0]
    assert record.output_tokens == 37


def test_generate_content_body_has_no_chunks() -> None:
    record = new_record(GEMINI, GENERATE_PATH, REQUEST)
    parse(GEMINI, record, JSON, GENERATE_BODY, "bytewise")
    assert record.chunk_times == []
    assert record.first_chunk is None


def test_embeddings_have_no_output_tokens() -> None:
    path = "/v1beta/models/text-embedding-004:embedContent"
    record = new_record(GEMINI, path, {"content": {"parts": [{"text": "hello"}]}})
    parse(GEMINI, record, JSON, b'{\n  "embedding": {\n    "values": [0.013, -0.008]\n  }\n}\n')
    assert record.request.operation == "embeddings"
    assert (record.input_tokens, record.output_tokens, record.finish_reasons) == (None, None, [])


def test_embeddings_usage_counts_input_only() -> None:
    path = "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    body = b'{"embeddings": [{"values": [0.1]}], "usageMetadata": {"promptTokenCount": 5}}'
    record = new_record(GEMINI, path, {"requests": []})
    parse(GEMINI, record, JSON, body)
    assert (record.input_tokens, record.output_tokens) == (5, None)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            429,
            b'{\n  "error": {\n    "code": 429,\n    "message": "Resource has been exhausted '
            b'(e.g. check quota).",\n    "status": "RESOURCE_EXHAUSTED"\n  }\n}\n',
            "RESOURCE_EXHAUSTED",
        ),
        (
            400,
            b'[{\n  "error": {\n    "code": 400,\n    "message": "API key not valid.",\n'
            b'    "status": "INVALID_ARGUMENT"\n  }\n}\n]',
            "INVALID_ARGUMENT",
        ),
        (500, b"", None),
    ],
)
def test_error_bodies(status: int, body: bytes, expected: str | None) -> None:
    record = new_record(GEMINI, STREAM_PATH, REQUEST, status=status)
    parse(GEMINI, record, JSON, body, "gzip")
    assert record.provider_error_type == expected


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, "NOT_FOUND"),
        (413, "INVALID_ARGUMENT"),
        (502, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (409, "FAILED_PRECONDITION"),
        (599, "INTERNAL"),
    ],
)
def test_error_body_shape(status: int, kind: str) -> None:
    body = GEMINI.error_body(status, "upstream timed out")
    assert orjson.loads(body) == {
        "error": {"code": status, "message": "upstream timed out", "status": kind}
    }
    record = new_record(GEMINI, GENERATE_PATH, REQUEST, status=status)
    parse(GEMINI, record, JSON, body)
    assert record.provider_error_type == kind
