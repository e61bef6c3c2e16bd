"""Anthropic Messages API: classification and the parsers, fed real response shapes."""

from __future__ import annotations

import orjson
import pytest

from sidecar.protocols.anthropic import AnthropicProtocol
from sidecar.protocols.parsers import BodyParser, StreamParser
from tests.helpers.wire import WAYS, new_record, parse

ANTHROPIC = AnthropicProtocol()
MESSAGES = "/v1/messages"
REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "Hello"}],
    "stream": True,
}
SSE = "text/event-stream; charset=utf-8"
JSON = "application/json"


def event(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


TEXT_STREAM = b"".join(
    (
        event(
            "message_start",
            b'{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL",'
            b'"type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",'
            b'"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,'
            b'"cache_creation_input_tokens":100,"cache_read_input_tokens":2048,'
            b'"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":0},'
            b'"output_tokens":2,"service_tier":"standard"}}}',
        ),
        event(
            "content_block_start",
            b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
        ),
        event("ping", b'{"type": "ping"}'),
        event(
            "content_block_delta",
            b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}',
        ),
        event(
            "content_block_delta",
            b'{"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"! \\u00e9t\\u00e9 \xe2\x9c\x93"}}',
        ),
        event("content_block_stop", b'{"type":"content_block_stop","index":0}'),
        event(
            "message_delta",
            b'{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
            b'"usage":{"output_tokens":15}}',
        ),
        event("message_stop", b'{"type":"message_stop"}'),
    )
)

THINKING_TOOL_STREAM = b"".join(
    (
        event(
            "message_start",
            b'{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U",'
            b'"type":"message","role":"assistant","model":"claude-opus-4-1-20250805",'
            b'"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,'
            b'"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}',
        ),
        event(
            "content_block_start",
            b'{"type":"content_block_start","index":0,"content_block":{"type":"thinking",'
            b'"thinking":"","signature":""}}',
        ),
        event(
            "content_block_delta",
            b'{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta",'
            b'"thinking":"The user wants the weather."}}',
        ),
        event(
            "content_block_delta",
            b'{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta",'
            b'"signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pk"}}',
        ),
        event("content_block_stop", b'{"type":"content_block_stop","index":0}'),
        event(
            "content_block_start",
            b'{"type":"content_block_start","index":1,"content_block":{"type":"tool_use",'
            b'"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}',
        ),
        event(
            "content_block_delta",
            b'{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
            b'"partial_json":"{\\"location\\": \\"Paris\\"}"}}',
        ),
        event("content_block_stop", b'{"type":"content_block_stop","index":1}'),
        event(
            "message_delta",
            b'{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},'
            b'"usage":{"input_tokens":4055,"cache_creation_input_tokens":0,'
            b'"cache_read_input_tokens":0,"output_tokens":89}}',
        ),
        event("message_stop", b'{"type":"message_stop"}'),
    )
)

MESSAGE_BODY = orjson.dumps(
    {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "Simple.", "signature": "Eq"},
            {"type": "text", "text": "Hi! "},
            {"type": "text", "text": "How can I help?"},
        ],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 1800,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 6,
            "service_tier": "standard",
        },
    }
)


# --- routing and classification -------------------------------------------------


@pytest.mark.parametrize(
    ("path", "claimed"),
    [
        ("/v1/messages", True),
        ("/v1/messages/count_tokens", True),
        ("/v1/messages/batches", True),
        ("/v1/chat/completions", False),
        ("/v1/message", False),
        ("/v1/messagesX", False),
    ],
)
def test_claims(path: str, claimed: bool) -> None:
    assert ANTHROPIC.claims(path) is claimed


def test_classify_messages() -> None:
    body = {**REQUEST, "temperature": 0.7, "top_p": 0.9, "top_k": 5}
    info = ANTHROPIC.classify("POST", MESSAGES, "beta=true", body)
    assert info.operation == "chat"
    assert info.request_model == "claude-sonnet-4-5"
    assert (info.stream, info.max_tokens, info.temperature, info.top_p) == (True, 1024, 0.7, 0.9)
    assert not hasattr(info, "body")  # the decoded body never rides the request facts


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("POST", "/v1/messages", "chat"),
        ("POST", "/v1/messages/", "chat"),
        ("POST", "/v1/messages/count_tokens", "other"),
        ("POST", "/v1/messages/batches", "other"),
        ("GET", "/v1/messages", "other"),
    ],
)
def test_operation(method: str, path: str, operation: str) -> None:
    info = ANTHROPIC.classify(method, path, "", {"model": "claude-haiku-4-5", "messages": []})
    assert info.operation == operation
    assert info.request_model == "claude-haiku-4-5"


@pytest.mark.parametrize(
    "body",
    [None, [], "x", 3.5, {"model": ["claude"], "stream": "yes", "max_tokens": "1024"}],
)
def test_classify_never_raises_on_malformed_bodies(body: object) -> None:
    info = ANTHROPIC.classify("POST", MESSAGES, "", body)
    assert (info.operation, info.request_model, info.stream, info.max_tokens) == (
        "chat",
        None,
        False,
        None,
    )


# --- streams ---------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_text_stream(way: str) -> None:
    record = new_record(ANTHROPIC, MESSAGES, REQUEST, capture=True)
    parser = parse(ANTHROPIC, record, SSE, TEXT_STREAM, way)
    assert isinstance(parser, StreamParser)
    assert parser.complete
    assert record.response_id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert record.response_model == "claude-sonnet-4-5-20250929"
    assert record.finish_reasons == ["end_turn"]
    assert record.input_tokens == 472 + 2048 + 100
    assert (record.cache_read_tokens, record.cache_creation_tokens) == (2048, 100)
    assert record.output_tokens == 15
    assert record.reasoning_tokens is None
    assert len(record.chunk_times) == 2
    assert record.output_text == "Hello! été ✓"


def test_first_chunk_is_first_content_block_delta() -> None:
    record = new_record(ANTHROPIC, MESSAGES, REQUEST)
    parser = ANTHROPIC.response_parser(record, SSE, "")
    for now, block in enumerate(TEXT_STREAM.split(b"\n\n")[:-1], start=1):
        parser.feed(block + b"\n\n", float(now))
    assert record.first_chunk == 4.0  # after message_start, content_block_start, ping
    assert record.chunk_times == [4.0, 5.0]


@pytest.mark.parametrize("way", ["bytewise", "crlf", "gzip"])
def test_thinking_and_tool_use_stream(way: str) -> None:
    record = new_record(ANTHROPIC, MESSAGES, REQUEST, capture=True)
    parser = parse(ANTHROPIC, record, SSE, THINKING_TOOL_STREAM, way)
    assert parser.complete
    assert record.finish_reasons == ["tool_use"]
    # message_delta's cumulative counts replace message_start's.
    assert (record.input_tokens, record.output_tokens) == (4055, 89)
    assert (record.cache_read_tokens, record.cache_creation_tokens) == (0, 0)
    assert len(record.chunk_times) == 3
    assert record.output_text == ""  # thinking and tool input are not text


def test_overloaded_error_event_mid_stream() -> None:
    cut = TEXT_STREAM[: TEXT_STREAM.index(b"event: content_block_stop")]
    error = event(
        "error", b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    )
    record = new_record(ANTHROPIC, MESSAGES, REQUEST)
    parser = parse(ANTHROPIC, record, SSE, cut + error, "pieces")
    assert record.provider_error_type == "overloaded_error"
    assert not parser.complete
    assert record.finish_reasons == []
    assert record.input_tokens == 2620  # message_start did report the input
    assert record.output_tokens is None  # its output count is a placeholder


def test_stream_without_message_stop_is_not_complete() -> None:
    record = new_record(ANTHROPIC, MESSAGES, REQUEST)
    cut = TEXT_STREAM[: TEXT_STREAM.index(b"event: message_stop")]
    parser = parse(ANTHROPIC, record, SSE, cut, "bytewise")
    assert record.finish_reasons == ["end_turn"]
    assert not parser.complete


def test_stream_without_event_lines_uses_type_field() -> None:
    bare = b"".join(
        line + b"\n" for line in TEXT_STREAM.split(b"\n") if not line.startswith(b"event:")
    )
    record = new_record(ANTHROPIC, MESSAGES, REQUEST)
    parser = parse(ANTHROPIC, record, SSE, bare)
    assert parser.complete
    assert (record.output_tokens, len(record.chunk_times)) == (15, 2)


# --- bodies ----------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_message_body(way: str) -> None:
    record = new_record(ANTHROPIC, MESSAGES, {**REQUEST, "stream": False}, capture=True)
    parser = parse(ANTHROPIC, record, JSON, MESSAGE_BODY, way)
    assert isinstance(parser, BodyParser)
    assert record.response_id == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert record.response_model == "claude-sonnet-4-5-20250929"
    assert record.finish_reasons == ["max_tokens"]
    assert (record.input_tokens, record.output_tokens) == (1812, 6)
    assert (record.cache_read_tokens, record.cache_creation_tokens) == (1800, 0)
    assert record.output_text == "Hi! How can I help?"


def test_count_tokens_body_records_no_usage() -> None:
    path = "/v1/messages/count_tokens"
    record = new_record(ANTHROPIC, path, {"model": "claude-sonnet-4-5", "messages": []})
    parse(ANTHROPIC, record, JSON, b'{"input_tokens":14}')
    assert record.request.operation == "other"
    assert (record.input_tokens, record.output_tokens) == (None, None)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},'
            b'"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}',
            "overloaded_error",
        ),
        (
            401,
            b'{"type":"error","error":{"type":"authentication_error",'
            b'"message":"invalid x-api-key"}}',
            "authentication_error",
        ),
        (502, b"<html>Bad Gateway</html>", None),
    ],
)
def test_error_bodies(status: int, body: bytes, expected: str | None) -> None:
    record = new_record(ANTHROPIC, MESSAGES, REQUEST, status=status)
    parse(ANTHROPIC, record, JSON, body, "gzip")
    assert record.provider_error_type == expected


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, "not_found_error"),
        (413, "request_too_large"),
        (502, "api_error"),
        (504, "timeout_error"),
        (422, "invalid_request_error"),
        (507, "api_error"),
    ],
)
def test_error_body_shape(status: int, kind: str) -> None:
    body = ANTHROPIC.error_body(status, "request body too large")
    assert orjson.loads(body) == {
        "type": "error",
        "error": {"type": kind, "message": "request body too large"},
    }
    record = new_record(ANTHROPIC, MESSAGES, REQUEST, status=status)
    parse(ANTHROPIC, record, JSON, body)
    assert record.provider_error_type == kind


def test_no_stream_usage_injection() -> None:
    info = ANTHROPIC.classify("POST", MESSAGES, "", REQUEST)
    assert ANTHROPIC.inject_stream_usage(info, REQUEST, orjson.dumps(REQUEST)) is None
    assert ANTHROPIC.stream_filter() is None
