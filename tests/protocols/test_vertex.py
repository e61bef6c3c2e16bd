"""Vertex AI: Gemini models in Gemini's format, Claude models in Anthropic's, by publisher."""

from __future__ import annotations

import orjson
import pytest

from sidecar.protocols.anthropic import MessagesBodyParser, MessagesStreamParser
from sidecar.protocols.gemini import GeminiBodyParser, GeminiStreamParser
from sidecar.protocols.vertex import PredictEmbeddingsParser, VertexProtocol, vertex_call
from tests.helpers.wire import WAYS, new_record, parse

VERTEX = VertexProtocol()
CLAUDE = "claude-sonnet-4@20250514"
CLAUDE_PATH = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/" + CLAUDE
GEMINI_PATH = "/v1beta1/projects/p/locations/us-central1/publishers/google/models/"
SSE = "text/event-stream; charset=utf-8"
JSON = "application/json; charset=UTF-8"
CLAUDE_BODY = {
    "anthropic_version": "vertex-2023-10-16",
    "max_tokens": 100,
    "temperature": 0.3,
    "messages": [{"role": "user", "content": "Hi"}],
}


def event(name: bytes, payload: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + payload + b"\n\n"


CLAUDE_STREAM = (
    event(
        b"message_start",
        b'{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
        b'"model":"claude-sonnet-4@20250514","content":[],"stop_reason":null,"usage":'
        b'{"input_tokens":30,"cache_creation_input_tokens":0,"cache_read_input_tokens":12,'
        b'"output_tokens":1}}}',
    )
    + event(b"content_block_start", b'{"type":"content_block_start","index":0,'
            b'"content_block":{"type":"text","text":""}}')
    + event(b"ping", b'{"type":"ping"}')
    + event(b"content_block_delta", b'{"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"From"}}')
    + event(b"content_block_delta", b'{"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":" text"}}')
    + event(b"content_block_stop", b'{"type":"content_block_stop","index":0}')
    + event(b"message_delta", b'{"type":"message_delta","delta":{"stop_reason":"end_turn",'
            b'"stop_sequence":null},"usage":{"output_tokens":40}}')
    + event(b"message_stop", b'{"type":"message_stop"}')
)  # fmt: skip


NO_MODEL = "/v1/projects/p/locations/l/publishers/google/models/:generateContent"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (CLAUDE_PATH + ":rawPredict", ("anthropic", CLAUDE, "rawPredict")),
        (
            CLAUDE_PATH.replace("@", "%40") + ":streamRawPredict",
            ("anthropic", CLAUDE, "streamRawPredict"),
        ),
        (
            GEMINI_PATH + "gemini-2.5-flash:generateContent",
            ("google", "gemini-2.5-flash", "generateContent"),
        ),
        (NO_MODEL, ("google", None, "generateContent")),
        ("/v1/projects/p/locations/l/publishers/google/models", (None, None, "")),
        ("/v1/projects/p/locations/l/endpoints/openapi/chat/completions", (None, None, "")),
    ],
)
def test_paths(path: str, expected: tuple[str | None, str | None, str]) -> None:
    assert vertex_call(path) == expected


def test_classify_claude_by_the_model_in_the_path() -> None:
    info = VERTEX.classify("POST", CLAUDE_PATH + ":rawPredict", "", CLAUDE_BODY)
    assert (info.operation, info.request_model, info.stream) == ("chat", CLAUDE, False)
    assert (info.temperature, info.max_tokens) == (0.3, 100)
    streamed = VERTEX.classify("POST", CLAUDE_PATH + ":streamRawPredict", "", CLAUDE_BODY)
    assert streamed.stream is True
    counting = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/count-tokens"
    counted = VERTEX.classify("POST", counting + ":rawPredict", "", {"model": CLAUDE})
    assert (counted.operation, counted.request_model) == ("other", CLAUDE)


def test_classify_gemini_and_embeddings() -> None:
    body = {"contents": [], "generationConfig": {"temperature": 0.2, "maxOutputTokens": 64}}
    info = VERTEX.classify("POST", GEMINI_PATH + "gemini-2.5-flash:streamGenerateContent", "", body)
    assert (info.operation, info.request_model, info.stream) == (
        "generate_content",
        "gemini-2.5-flash",
        True,
    )
    assert (info.temperature, info.max_tokens) == (0.2, 64)
    batch = VERTEX.classify("POST", GEMINI_PATH + "gemini-embedding-001:batchEmbedContents", "", {})
    assert batch.operation == "embeddings"
    predict = {"instances": [{"content": "first"}, {"content": "second"}]}
    embed = VERTEX.classify("POST", GEMINI_PATH + "text-embedding-005:predict", "", predict)
    assert (embed.operation, embed.request_model) == ("embeddings", "text-embedding-005")
    other = VERTEX.classify("POST", GEMINI_PATH + "imagen-3:predict", "", {"instances": [{}]})
    assert other.operation == "other"
    no_model = VERTEX.classify("POST", NO_MODEL, "", {})
    assert (no_model.operation, no_model.request_model) == ("generate_content", None)


@pytest.mark.parametrize("way", WAYS)
def test_claude_stream(way: str) -> None:
    record = new_record(VERTEX, CLAUDE_PATH + ":streamRawPredict", CLAUDE_BODY)
    parser = parse(VERTEX, record, SSE, CLAUDE_STREAM, way)
    assert isinstance(parser, MessagesStreamParser) and parser.complete
    assert record.response_model == CLAUDE
    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (42, 12, 40)
    assert record.finish_reasons == ["end_turn"]
    assert len(record.chunk_times) == 2


def test_claude_body() -> None:
    record = new_record(VERTEX, CLAUDE_PATH + ":rawPredict", CLAUDE_BODY)
    body = {
        "id": "msg_1",
        "type": "message",
        "model": CLAUDE,
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 18, "cache_read_input_tokens": 12, "output_tokens": 40},
    }
    assert isinstance(parse(VERTEX, record, JSON, orjson.dumps(body)), MessagesBodyParser)
    assert (record.input_tokens, record.output_tokens, record.response_id) == (30, 40, "msg_1")


def test_gemini_uses_geminis_parsers() -> None:
    path = GEMINI_PATH + "gemini-2.0-flash:streamGenerateContent"
    record = new_record(VERTEX, path, {"contents": []})
    stream = (
        b'data: {"candidates": [{"content": {"role": "model","parts": [{"text": "Hi"}]}}],'
        b'"modelVersion": "gemini-2.0-flash-001","responseId": "r1"}\r\n\r\n'
        b'data: {"candidates": [{"content": {"role": "model","parts": [{"text": " there"}]},'
        b'"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 5,'
        b'"candidatesTokenCount": 2,"totalTokenCount": 7,"trafficType": "ON_DEMAND"},'
        b'"modelVersion": "gemini-2.0-flash-001","responseId": "r1"}\r\n\r\n'
    )
    assert isinstance(parse(VERTEX, record, SSE, stream), GeminiStreamParser)
    assert (record.input_tokens, record.output_tokens) == (5, 2)
    assert record.response_model == "gemini-2.0-flash-001" and len(record.chunk_times) == 2
    whole = new_record(VERTEX, GEMINI_PATH + "gemini-2.0-flash:generateContent", {})
    assert isinstance(parse(VERTEX, whole, JSON, b"{}"), GeminiBodyParser)


def test_predict_embeddings_count_every_input() -> None:
    path = GEMINI_PATH + "text-embedding-005:predict"
    record = new_record(VERTEX, path, {"instances": [{"content": "a"}, {"content": "b c"}]})
    body = {
        "predictions": [
            {"embeddings": {"statistics": {"truncated": False, "token_count": 2}, "values": []}},
            {"embeddings": {"statistics": {"truncated": False, "token_count": 5}, "values": []}},
        ],
        "metadata": {"billableCharacterCount": 4},
    }
    assert isinstance(parse(VERTEX, record, JSON, orjson.dumps(body)), PredictEmbeddingsParser)
    assert (record.input_tokens, record.output_tokens) == (7, None)


def test_errors_in_either_shape() -> None:
    google = new_record(VERTEX, CLAUDE_PATH + ":rawPredict", CLAUDE_BODY, status=429)
    shape = {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}
    parse(VERTEX, google, JSON, orjson.dumps(shape))
    assert google.provider_error_type == "RESOURCE_EXHAUSTED"
    claude = new_record(VERTEX, CLAUDE_PATH + ":rawPredict", CLAUDE_BODY, status=529)
    parse(VERTEX, claude, JSON, b'{"type":"error","error":{"type":"overloaded_error"}}')
    assert claude.provider_error_type == "overloaded_error"
    local = orjson.loads(VERTEX.error_body(400, "no upstream 'vertex'"))
    assert local == {
        "error": {"code": 400, "message": "no upstream 'vertex'", "status": "INVALID_ARGUMENT"}
    }
