"""OpenAI wire protocol: classification and the parsers, fed real response shapes."""

from __future__ import annotations

import gzip

import orjson
import pytest

from sidecar.protocols.openai import OpenAIProtocol
from sidecar.protocols.parsers import BodyParser, StreamParser
from tests.helpers.openai_streams import CHUNK_HEAD, COMPLETION_STREAM, chat_stream
from tests.helpers.wire import WAYS, new_record, parse, pieces, split

OPENAI = OpenAIProtocol()
CHAT = "/v1/chat/completions"
CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
STREAM_BODY = {**CHAT_BODY, "stream": True}
SSE = "text/event-stream; charset=utf-8"
JSON = "application/json"

TOOL_STREAM = (
    b'data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1754500001,'
    b'"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_9",'
    b'"type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},'
    b'"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1754500001,'
    b'"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1","choices":[{"index":0,'
    b'"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\":"}}]},'
    b'"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1754500001,'
    b'"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1","choices":[{"index":0,'
    b'"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\\"Paris\\"}"}}]},'
    b'"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1754500001,'
    b'"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1","choices":[{"index":0,'
    b'"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}\n\n'
    b"data: [DONE]\n\n"
)

CHAT_BODY_RESPONSE = orjson.dumps(
    {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "o4-mini-2025-04-16",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Paris.",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 192,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": None,
    },
    option=orjson.OPT_INDENT_2,
)


# --- routing and classification -------------------------------------------------


@pytest.mark.parametrize(
    ("path", "claimed"),
    [
        ("/v1/chat/completions", True),
        ("/v1/completions", True),
        ("/v1/embeddings", True),
        ("/v1/responses", True),
        ("/v1/responses/resp_123", True),
        ("/v1/responses/resp_123/cancel", True),
        ("/v1/models", False),
        ("/v1/messages", False),
        ("/v1/chat/completionsX", False),
        ("/v1beta/models/gemini-2.0-flash:generateContent", False),
    ],
)
def test_claims(path: str, claimed: bool) -> None:
    assert OPENAI.claims(path) is claimed


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("POST", "/v1/chat/completions", "chat"),
        ("POST", "/v1/completions", "text_completion"),
        ("POST", "/v1/embeddings", "embeddings"),
        ("POST", "/v1/responses", "chat"),
        ("post", "/vllm/v1/chat/completions", "chat"),
        ("GET", "/v1/chat/completions", "other"),
        ("GET", "/v1/responses/resp_1", "other"),
        ("POST", "/v1/responses/resp_1/cancel", "other"),
        ("POST", "/v1/responses/input_tokens", "other"),
        ("GET", "/v1/models", "other"),
    ],
)
def test_operation_by_path(method: str, path: str, operation: str) -> None:
    assert OPENAI.classify(method, path, "", CHAT_BODY).operation == operation


def test_classify_reads_request_parameters() -> None:
    body = {
        **CHAT_BODY,
        "stream": True,
        "temperature": 0.2,
        "top_p": 1,
        "max_completion_tokens": 512,
        "max_tokens": 100,
        "seed": 42,
        "n": 3,
    }
    info = OPENAI.classify("POST", CHAT, "", body)
    assert info.request_model == "gpt-4o-mini"
    assert info.stream is True
    assert info.temperature == 0.2
    assert info.top_p == 1.0
    assert info.max_tokens == 512  # max_completion_tokens wins over the legacy field
    assert info.seed == 42
    assert info.choice_count == 3
    assert not hasattr(info, "body")  # the decoded body never rides the request facts


def test_classify_responses_api_max_output_tokens() -> None:
    body = {"model": "gpt-4.1", "input": "Hi", "max_output_tokens": 64, "stream": True}
    info = OPENAI.classify("POST", "/v1/responses", "", body)
    assert (info.operation, info.max_tokens, info.stream) == ("chat", 64, True)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        [CHAT_BODY],
        "text",
        42,
        {"model": 4, "stream": "true", "temperature": "hot", "n": True, "max_tokens": None},
        {"model": None, "stream": 1, "top_p": [1], "seed": {"a": 1}},
    ],
)
def test_classify_never_raises_on_malformed_bodies(body: object) -> None:
    info = OPENAI.classify("POST", CHAT, "", body)
    assert info.operation == "chat"
    assert info.request_model is None
    assert info.stream is False
    assert (info.temperature, info.top_p, info.seed, info.choice_count) == (None,) * 4
    assert not hasattr(info, "body")  # the decoded body never rides the request facts


# --- chat streams ----------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_chat_stream_with_usage(way: str) -> None:
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parser = parse(OPENAI, record, SSE, chat_stream(injected=True), way)
    assert isinstance(parser, StreamParser)
    assert parser.complete
    assert record.response_id == "chatcmpl-C3xYz"
    assert record.response_model == "gpt-4o-mini-2024-07-18"
    assert record.finish_reasons == ["stop"]
    assert (record.input_tokens, record.output_tokens) == (2006, 300)
    assert (record.cache_read_tokens, record.reasoning_tokens) == (1920, 192)
    assert record.cache_creation_tokens is None
    assert len(record.chunk_times) == 2  # the two content deltas, not role or finish chunks
    assert record.first_chunk == record.chunk_times[0]
    assert record.output_text is None  # content capture is off


def test_first_chunk_is_first_content_not_role_chunk() -> None:
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parser = OPENAI.response_parser(record, SSE, "")
    for now, event in enumerate(chat_stream(injected=False).split(b"\n\n")[:-1], start=10):
        parser.feed(event + b"\n\n", float(now))
    parser.finish()
    assert record.first_chunk == 11.0
    assert record.chunk_times == [11.0, 12.0]


def test_stream_without_usage_leaves_tokens_unknown() -> None:
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parser = parse(OPENAI, record, SSE, chat_stream(injected=False), "pieces")
    assert parser.complete
    assert record.finish_reasons == ["stop"]
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens) == (None,) * 3


def test_stream_content_capture_joins_text() -> None:
    record = new_record(OPENAI, CHAT, STREAM_BODY, capture=True)
    parse(OPENAI, record, SSE, chat_stream(injected=True), "bytewise")
    assert record.output_text == "Hello there!\n"


@pytest.mark.parametrize("way", WAYS)
def test_tool_call_stream(way: str) -> None:
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parser = parse(OPENAI, record, SSE, TOOL_STREAM, way)
    assert parser.complete
    assert record.finish_reasons == ["tool_calls"]
    assert record.response_model == "gpt-4.1-2025-04-14"
    assert len(record.chunk_times) == 3  # the call's name, then two argument pieces


def test_text_completion_stream() -> None:
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Once", "stream": True}
    record = new_record(OPENAI, "/v1/completions", body, capture=True)
    parser = parse(OPENAI, record, SSE, COMPLETION_STREAM, "crlf")
    assert record.request.operation == "text_completion"
    assert parser.complete
    assert record.response_id == "cmpl-9a"
    assert record.finish_reasons == ["length"]
    assert (record.input_tokens, record.output_tokens) == (5, 7)
    assert len(record.chunk_times) == 2
    assert record.output_text == "\n\nOnce upon"


def test_several_choices_keep_finish_reasons_in_index_order() -> None:
    def chunk(index: int, delta: bytes, reason: bytes) -> bytes:
        return (
            CHUNK_HEAD + b'[{"index":' + str(index).encode() + b',"delta":' + delta
            + b',"logprobs":null,"finish_reason":' + reason + b"}]}\n\n"
        )  # fmt: skip

    stream = (
        chunk(0, b'{"role":"assistant","content":""}', b"null")
        + chunk(1, b'{"role":"assistant","content":""}', b"null")
        + chunk(1, b'{"content":"B"}', b"null")
        + chunk(0, b'{"content":"A"}', b"null")
        + chunk(1, b"{}", b'"stop"')
        + chunk(0, b"{}", b'"length"')
        + b"data: [DONE]\n\n"
    )
    record = new_record(OPENAI, CHAT, {**STREAM_BODY, "n": 2}, capture=True)
    parser = parse(OPENAI, record, SSE, stream, "pieces")
    assert parser.complete
    assert record.finish_reasons == ["length", "stop"]
    assert record.output_text == "A"  # the first choice only


def test_azure_first_chunk_without_id_or_model() -> None:
    azure_first = (
        b'data: {"choices":[],"created":0,"id":"","model":"","object":"",'
        b'"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}\n\n'
    )
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parse(OPENAI, record, SSE, azure_first + chat_stream(injected=False))
    assert record.response_id == "chatcmpl-C3xYz"
    assert record.response_model == "gpt-4o-mini-2024-07-18"


def test_stream_cut_short_is_not_complete() -> None:
    stream = chat_stream(injected=True)
    cut = stream[: stream.index(b'"finish_reason":"stop"')]
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parser = parse(OPENAI, record, SSE, cut, "pieces")
    assert not parser.complete
    assert record.finish_reasons == []
    assert record.input_tokens is None
    assert len(record.chunk_times) == 2


def test_early_done_without_finish_reason_is_not_complete() -> None:
    # llama.cpp's server cuts a running stream short this way (interrupt_requests).
    stream = chat_stream(injected=False)
    early = stream[: stream.index(b'data: {"id":"chatcmpl-C3xYz"', 600)] + b"data: [DONE]\n\n"
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parser = parse(OPENAI, record, SSE, early)
    assert not parser.complete
    assert record.finish_reasons == []


def test_finish_reason_without_done_is_not_complete() -> None:
    stream = chat_stream(injected=False)
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parser = parse(OPENAI, record, SSE, stream[: stream.index(b"data: [DONE]")])
    assert record.finish_reasons == ["stop"]
    assert not parser.complete


def test_error_event_mid_stream() -> None:
    stream = chat_stream(injected=False)
    cut = stream[: stream.index(b"data:", 10)]  # the role chunk only
    error = (
        b'data: {"error":{"message":"The server had an error while processing your request.",'
        b'"type":"server_error","param":null,"code":null}}\n\n'
    )
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parser = parse(OPENAI, record, SSE, cut + error, "bytewise")
    assert record.provider_error_type == "server_error"
    assert not parser.complete


def test_python_style_spaced_json_chunks() -> None:
    # Servers that serialise with json.dumps defaults put spaces after separators.
    stream = (
        b'data: {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1, '
        b'"model": "Qwen/Qwen2.5-7B", "choices": [{"index": 0, "delta": {"role": "assistant", '
        b'"content": ""}, "finish_reason": null}]}\n\n'
        b'data: {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1, '
        b'"model": "Qwen/Qwen2.5-7B", "choices": [{"index": 0, "delta": {"content": "Hi"}, '
        b'"finish_reason": null}]}\n\n'
        b'data: {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1, '
        b'"model": "Qwen/Qwen2.5-7B", "choices": [{"index": 0, "delta": {}, '
        b'"finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 1, '
        b'"total_tokens": 10}}\n\n'
        b"data: [DONE]\n\n"
    )
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parser = parse(OPENAI, record, SSE, stream, "pieces")
    assert parser.complete
    assert len(record.chunk_times) == 1
    assert (record.input_tokens, record.output_tokens, record.finish_reasons) == (9, 1, ["stop"])


def test_reasoning_content_deltas_are_output_chunks() -> None:
    stream = (
        CHUNK_HEAD + b'[{"index":0,"delta":{"role":"assistant","content":null,'
        b'"reasoning_content":"Let me think"},"finish_reason":null}]}\n\n'
        + CHUNK_HEAD + b'[{"index":0,"delta":{"content":"42"},"finish_reason":"stop"}]}\n\n'
        + b"data: [DONE]\n\n"
    )  # fmt: skip
    record = new_record(OPENAI, CHAT, STREAM_BODY)
    parse(OPENAI, record, SSE, stream)
    assert record.chunk_times == [0.0, 0.0]


# --- bodies --------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_chat_body(way: str) -> None:
    record = new_record(OPENAI, CHAT, CHAT_BODY, capture=True)
    parser = parse(OPENAI, record, JSON, CHAT_BODY_RESPONSE, way)
    assert isinstance(parser, BodyParser)
    assert record.response_id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert record.response_model == "o4-mini-2025-04-16"
    assert record.finish_reasons == ["stop"]
    assert (record.input_tokens, record.output_tokens) == (2006, 300)
    assert (record.cache_read_tokens, record.reasoning_tokens) == (1920, 192)
    assert record.output_text == "Paris."
    assert record.chunk_times == []


def test_chat_body_without_capture_keeps_no_text() -> None:
    record = new_record(OPENAI, CHAT, CHAT_BODY)
    parse(OPENAI, record, JSON, CHAT_BODY_RESPONSE)
    assert record.output_text is None


def test_embeddings_body_has_input_tokens_only() -> None:
    body = orjson.dumps(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 8, "total_tokens": 8},
        }
    )
    request = {"model": "text-embedding-3-small", "input": "The food was delicious"}
    record = new_record(OPENAI, "/v1/embeddings", request)
    parse(OPENAI, record, JSON, body, "gzip")
    assert record.request.operation == "embeddings"
    assert record.response_model == "text-embedding-3-small"
    assert (record.input_tokens, record.output_tokens) == (8, None)
    assert record.finish_reasons == []


def test_embeddings_output_count_is_ignored() -> None:
    body = b'{"object":"list","data":[],"model":"bge-m3","usage":{"prompt_tokens":3,"completion_tokens":0,"total_tokens":3}}'  # noqa: E501
    record = new_record(OPENAI, "/v1/embeddings", {"model": "bge-m3", "input": "x"})
    parse(OPENAI, record, JSON, body)
    assert (record.input_tokens, record.output_tokens) == (3, None)


def test_oversized_embeddings_body_still_reports_usage() -> None:
    vector = [0.0123456789] * 1536
    data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(600)]
    body = orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": "text-embedding-3-large",
            "usage": {"prompt_tokens": 4096, "total_tokens": 4096},
        }
    )
    assert len(body) > 8 * 1024 * 1024
    record = new_record(OPENAI, "/v1/embeddings", {"model": "text-embedding-3-large"})
    parser = OPENAI.response_parser(record, JSON, "")
    for index, piece in enumerate(split(body, 65536)):
        parser.feed(piece, float(index))
    parser.finish()
    assert record.response_model == "text-embedding-3-large"
    assert (record.input_tokens, record.output_tokens) == (4096, None)


def test_non_json_body_is_ignored() -> None:
    record = new_record(OPENAI, CHAT, CHAT_BODY)
    parse(OPENAI, record, "text/html", b"<html>502 Bad Gateway</html>")
    assert (record.response_model, record.input_tokens, record.finish_reasons) == (None, None, [])


# --- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            b'{"error":{"message":"Incorrect API key provided: sk-abc***.","type":'
            b'"invalid_request_error","param":null,"code":"invalid_api_key"}}',
            "invalid_request_error",
        ),
        (
            429,
            b'{\n  "error": {\n    "message": "You exceeded your current quota.",\n'
            b'    "type": "insufficient_quota",\n    "param": null,\n'
            b'    "code": "insufficient_quota"\n  }\n}\n',
            "insufficient_quota",
        ),
        (
            404,
            b'{"error":{"message":"The model `gpt-9` does not exist","type":null,"param":null,'
            b'"code":"model_not_found"}}',
            "model_not_found",
        ),
        (
            400,
            b'{"object":"error","message":"max_tokens is too large","type":"BadRequestError",'
            b'"param":null,"code":400}',
            "BadRequestError",
        ),
        (500, b"Internal Server Error", None),
    ],
)
@pytest.mark.parametrize("way", ["whole", "gzip"])
def test_error_bodies(status: int, body: bytes, expected: str | None, way: str) -> None:
    record = new_record(OPENAI, CHAT, STREAM_BODY, status=status)
    parse(OPENAI, record, JSON, body, way)
    assert record.provider_error_type == expected
    assert record.input_tokens is None


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (404, "invalid_request_error", "not_found"),
        (413, "invalid_request_error", "request_too_large"),
        (502, "server_error", "bad_gateway"),
        (504, "server_error", "timeout"),
        (418, "invalid_request_error", None),
        (599, "server_error", None),
    ],
)
def test_error_body_shape(status: int, kind: str, code: str | None) -> None:
    body = OPENAI.error_body(status, 'upstream "x" timed out')
    assert orjson.loads(body) == {
        "error": {"message": 'upstream "x" timed out', "type": kind, "param": None, "code": code}
    }
    record = new_record(OPENAI, CHAT, CHAT_BODY, status=status)
    parse(OPENAI, record, JSON, body)
    assert record.provider_error_type == kind


def test_error_status_uses_error_parser_even_for_event_stream() -> None:
    record = new_record(OPENAI, CHAT, STREAM_BODY, status=503)
    parser = parse(OPENAI, record, SSE, OPENAI.error_body(503, "draining"))
    assert isinstance(parser, BodyParser)
    assert record.provider_error_type == "server_error"


def test_gzip_pieces_helper_really_compresses() -> None:
    chunks, encoding = pieces(CHAT_BODY_RESPONSE, "gzip")
    assert encoding == "gzip"
    assert gzip.decompress(b"".join(chunks)) == CHAT_BODY_RESPONSE
