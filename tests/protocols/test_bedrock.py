"""Amazon Bedrock's wire protocol: paths and models, request parameters, Converse and InvokeModel
bodies of each model family, AWS event streams fed in awkward pieces, errors."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from botocore.parsers import create_parser

from sidecar.protocols.bedrock import BedrockProtocol, bedrock_call, invoke_operation
from sidecar.protocols.registry import protocol_for_path
from sidecar.record import CallRecord
from sidecar.simulate.eventstream_encode import encode_frame, event_headers, exception_headers
from tests.helpers.wire import new_record, split

PROTOCOL = BedrockProtocol()
SONNET = "us.anthropic.claude-sonnet-4-20250514-v1:0"
ENCODED_SONNET = "us.anthropic.claude-sonnet-4-20250514-v1%3A0"
PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/" + SONNET
ENCODED_ARN = PROFILE_ARN.replace(":", "%3A").replace("/", "%2F")
EVENT_STREAM = "application/vnd.amazon.eventstream"


def event(name: str, payload: dict[str, Any]) -> bytes:
    return encode_frame(event_headers(name), orjson.dumps(payload))


def chunk(family_event: dict[str, Any]) -> bytes:
    encoded = base64.b64encode(orjson.dumps(family_event)).decode()
    return event("chunk", {"bytes": encoded, "p": "abc"})


def parse(
    path: str,
    data: bytes,
    *,
    content_type: str = "application/json",
    piece: int | None = None,
    capture: bool = False,
    request: Any = None,
) -> tuple[CallRecord, bool, list[float]]:
    """(record, complete, times fed) after feeding `data` in pieces of `piece` bytes, one
    piece per second of a fake clock."""
    record = new_record(PROTOCOL, path, request, capture=capture)
    parser = PROTOCOL.response_parser(record, content_type, "")
    pieces = split(data, piece) if piece else [data]
    times = [float(i) for i in range(len(pieces))]
    for now, part in zip(times, pieces, strict=True):
        parser.feed(part, now)
    parser.finish()
    return record, parser.complete, times


# Paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "model", "operation"),
    [
        (f"/model/{ENCODED_SONNET}/converse", SONNET, "converse"),
        (f"/model/{ENCODED_SONNET}/converse-stream", SONNET, "converse-stream"),
        (
            "/model/meta.llama3-1-8b-instruct-v1%3A0/invoke",
            "meta.llama3-1-8b-instruct-v1:0",
            "invoke",
        ),
        (
            f"/model/{ENCODED_ARN}/invoke-with-response-stream",
            PROFILE_ARN,
            "invoke-with-response-stream",
        ),
        # An ARN whose slash a client left unencoded: the operation is still the last segment.
        (f"/model/{PROFILE_ARN}/converse", PROFILE_ARN, "converse"),
        ("/model/amazon.nova-lite-v1%3A0/count-tokens", "amazon.nova-lite-v1:0", "count-tokens"),
        ("/model/x", None, ""),
        ("/guardrail/gr1/version/1/apply", None, ""),
    ],
)
def test_model_and_operation_from_the_path(path: str, model: str | None, operation: str) -> None:
    assert bedrock_call(path) == (model, operation)
    claimed = protocol_for_path(path)
    assert claimed is not None and claimed.name == "bedrock"


@pytest.mark.parametrize("path", ["/async-invoke", "/async-invoke/arn%3Aaws%3Ax"])
def test_other_runtime_paths_are_claimed(path: str) -> None:
    assert PROTOCOL.claims(path)


@pytest.mark.parametrize("path", ["/models/x/converse", "/v1/model/x/converse", "/modelx/converse"])
def test_unrelated_paths_are_not_claimed(path: str) -> None:
    assert not PROTOCOL.claims(path)


def test_provider_name() -> None:
    assert (PROTOCOL.name, PROTOCOL.provider_name) == ("bedrock", "aws.bedrock")


# Requests -------------------------------------------------------------------------------------


def test_converse_request() -> None:
    body = {
        "messages": [],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "topP": 0.9},
    }
    info = PROTOCOL.classify("POST", f"/model/{ENCODED_SONNET}/converse-stream", "", body)
    assert (info.operation, info.request_model, info.stream) == ("chat", SONNET, True)
    assert (info.max_tokens, info.temperature, info.top_p) == (300, 0.2, 0.9)


@pytest.mark.parametrize(
    ("model", "body", "expected"),
    [
        (
            SONNET,
            {"anthropic_version": "x", "max_tokens": 50, "temperature": 0.5, "top_p": 0.8},
            ("chat", 50, 0.5, 0.8),
        ),
        (
            "meta.llama3-1-8b-instruct-v1:0",
            {"prompt": "hi", "max_gen_len": 7, "temperature": 0.1},
            ("chat", 7, 0.1, None),
        ),
        (
            "us.amazon.nova-lite-v1:0",
            {"messages": [], "inferenceConfig": {"max_new_tokens": 9, "top_p": 0.7}},
            ("chat", 9, None, 0.7),
        ),
        (
            "amazon.titan-text-express-v1",
            {"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 11, "topP": 0.3}},
            ("text_completion", 11, None, 0.3),
        ),
        ("amazon.titan-embed-text-v2:0", {"inputText": "hi"}, ("embeddings", None, None, None)),
        (
            "cohere.command-r-v1:0",
            {"message": "hi", "max_tokens": 5, "p": 0.4},
            ("chat", 5, None, 0.4),
        ),
    ],
)
def test_invoke_request_per_family(
    model: str, body: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    path = f"/model/{model.replace(':', '%3A')}/invoke"
    info = PROTOCOL.classify("POST", path, "", body)
    assert (info.operation, info.max_tokens, info.temperature, info.top_p) == expected
    assert info.request_model == model and not info.stream
    assert invoke_operation(model) == expected[0]


def test_other_requests_are_operation_other() -> None:
    assert PROTOCOL.classify("GET", "/async-invoke", "", None).operation == "other"
    info = PROTOCOL.classify("POST", f"/model/{ENCODED_SONNET}/count-tokens", "", {})
    assert (info.operation, info.request_model) == ("other", SONNET)


# Converse ---------------------------------------------------------------------------------------

CONVERSE_BODY = orjson.dumps(
    {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "Let me check. "},
                    {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Oslo"}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {
            "inputTokens": 100,
            "outputTokens": 30,
            "totalTokens": 330,
            "cacheReadInputTokens": 150,
            "cacheWriteInputTokens": 50,
        },
        "metrics": {"latencyMs": 412},
    }
)


@pytest.mark.parametrize("piece", [None, 1, 7])
def test_converse_body(piece: int | None) -> None:
    path = f"/model/{ENCODED_SONNET}/converse"
    record, complete, _ = parse(path, CONVERSE_BODY, piece=piece, capture=True)
    assert complete
    # Bedrock's inputTokens excludes cache reads and writes; the conventions' input includes them.
    assert (record.input_tokens, record.output_tokens) == (300, 30)
    assert (record.cache_read_tokens, record.cache_creation_tokens) == (150, 50)
    assert record.finish_reasons == ["tool_use"]
    assert record.provider_latency_s == pytest.approx(0.412)
    assert record.output_text == "Let me check. "
    assert record.output_tool_calls == ['weather\0{"city":"Oslo"}']
    assert record.first_chunk is None  # a whole body has no time to first chunk


def converse_stream(*, text_pieces: int = 3) -> bytes:
    frames = [event("messageStart", {"role": "assistant", "p": "ab"})]
    frames += [
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f"w{i} "}, "p": "a"})
        for i in range(text_pieces)
    ]
    frames += [
        event(
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t", "name": "f"}}},
        ),
        event(
            "contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a":'}}}
        ),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "tool_use"}),
        event(
            "metadata",
            {
                "usage": {
                    "inputTokens": 12,
                    "outputTokens": 9,
                    "totalTokens": 29,
                    "cacheReadInputTokens": 8,
                },
                "metrics": {"latencyMs": 95},
            },
        ),
    ]
    return b"".join(frames)


@pytest.mark.parametrize("piece", [None, 1, 5, 64])
def test_converse_stream(piece: int | None) -> None:
    path = f"/model/{ENCODED_SONNET}/converse-stream"
    data = converse_stream()
    record, complete, times = parse(
        path, data, content_type=EVENT_STREAM, piece=piece, capture=True
    )
    assert complete
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens) == (20, 9, 8)
    assert record.cache_creation_tokens is None
    assert record.finish_reasons == ["tool_use"]
    assert record.provider_latency_s == pytest.approx(0.095)
    assert len(record.chunk_times) == 5  # every contentBlockDelta, text and tool input
    assert record.output_text == "w0 w1 w2 "
    assert record.output_tool_calls == ['f\0{"a":1}']
    # The first chunk is the time the first contentBlockDelta's frame was complete.
    first_delta_end = len(event("messageStart", {"role": "assistant", "p": "ab"})) + len(
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "w0 "}, "p": "a"})
    )
    assert record.first_chunk == (times[(first_delta_end - 1) // piece] if piece else 0.0)


def test_converse_stream_cut_inside_a_frame_is_incomplete() -> None:
    data = converse_stream()
    cut = data[: data.index(b"messageStop") + 5]  # the messageStop frame never ends
    record, complete, _ = parse(
        f"/model/{ENCODED_SONNET}/converse-stream", cut, content_type=EVENT_STREAM
    )
    assert not complete
    assert len(record.chunk_times) == 5 and record.finish_reasons == []


def test_converse_stream_without_its_last_events_is_incomplete() -> None:
    data = converse_stream()
    cut = data[: data.index(b"contentBlockStart") - 20]  # whole frames, no messageStop
    _, complete, _ = parse(
        f"/model/{ENCODED_SONNET}/converse-stream", cut, content_type=EVENT_STREAM
    )
    assert not complete


def test_a_corrupt_frame_stops_parsing_without_raising() -> None:
    data = bytearray(converse_stream())
    data[40] ^= 0xFF  # inside the first frame's payload: its message CRC fails
    record, complete, _ = parse(
        f"/model/{ENCODED_SONNET}/converse-stream", bytes(data), content_type=EVENT_STREAM, piece=9
    )
    assert not complete
    assert record.chunk_times == [] and record.input_tokens is None


def test_an_exception_in_the_stream_names_the_error() -> None:
    head = event("messageStart", {"role": "assistant"}) + event(
        "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}
    )
    failure = encode_frame(
        exception_headers("throttlingException"), orjson.dumps({"message": "Too many tokens"})
    )
    record, complete, _ = parse(
        f"/model/{ENCODED_SONNET}/converse-stream", head + failure, content_type=EVENT_STREAM
    )
    assert not complete
    assert record.provider_error_type == "throttlingException"


# InvokeModel bodies, by family -------------------------------------------------------------------

INVOKE_BODIES: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = [
    (
        SONNET,
        {
            "id": "msg_bdrk_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": "Hello."}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 20,
                "cache_creation_input_tokens": 5,
                "output_tokens": 7,
            },
        },
        (35, 7, 20, 5, ["end_turn"], "claude-sonnet-4-20250514", "Hello."),
    ),
    (
        "meta.llama3-1-8b-instruct-v1:0",
        {
            "generation": "Hello.",
            "prompt_token_count": 14,
            "generation_token_count": 3,
            "stop_reason": "stop",
        },
        (14, 3, None, None, ["stop"], None, "Hello."),
    ),
    (
        "us.amazon.nova-lite-v1:0",
        {
            "output": {"message": {"content": [{"text": "Hello."}], "role": "assistant"}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": 30,
                "outputTokens": 4,
                "totalTokens": 44,
                "cacheReadInputTokenCount": 10,
                "cacheWriteInputTokenCount": 0,
            },
        },
        (40, 4, 10, 0, ["end_turn"], None, "Hello."),
    ),
    (
        "amazon.titan-text-express-v1",
        {
            "inputTextTokenCount": 6,
            "results": [{"tokenCount": 2, "outputText": "Hello.", "completionReason": "FINISH"}],
        },
        (6, 2, None, None, ["FINISH"], None, "Hello."),
    ),
    (
        "mistral.mistral-large-2402-v1:0",
        {"outputs": [{"text": "Hello.", "stop_reason": "stop"}]},
        (None, None, None, None, ["stop"], None, "Hello."),
    ),
    # A family the sidecar does not know: recorded without tokens, never failed.
    (
        "cohere.command-r-v1:0",
        {"text": "Hello.", "finish_reason": "COMPLETE", "generation_id": "g"},
        (None, None, None, None, [], None, None),
    ),
]


@pytest.mark.parametrize(("model", "body", "expected"), INVOKE_BODIES)
def test_invoke_bodies(model: str, body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    path = f"/model/{model.replace(':', '%3A')}/invoke"
    record, complete, _ = parse(path, orjson.dumps(body), piece=3, capture=True)
    assert complete
    assert (
        record.input_tokens,
        record.output_tokens,
        record.cache_read_tokens,
        record.cache_creation_tokens,
        record.finish_reasons,
        record.response_model,
        record.output_text,
    ) == expected


def test_a_body_that_is_not_json_is_recorded_without_usage() -> None:
    record, complete, _ = parse(
        "/model/stability.sd3/invoke", b"\x89PNG...", content_type="image/png"
    )
    assert complete and record.input_tokens is None


# InvokeModelWithResponseStream, by family ---------------------------------------------------------

METRICS = {
    "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": 10,
        "outputTokenCount": 4,
        "invocationLatency": 321,
        "firstByteLatency": 80,
        "cacheReadInputTokenCount": 20,
    }
}


def anthropic_stream() -> bytes:
    return b"".join(
        chunk(item)
        for item in [
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "model": "claude-sonnet-4-20250514",
                    "usage": {
                        "input_tokens": 10,
                        "cache_read_input_tokens": 20,
                        "output_tokens": 1,
                    },
                },
            },
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hel"},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "lo."},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 4},
            },
            {"type": "message_stop", **METRICS},
        ]
    )


def llama_stream() -> bytes:
    return b"".join(
        chunk(item)
        for item in [
            {
                "generation": "Hel",
                "prompt_token_count": 10,
                "generation_token_count": 1,
                "stop_reason": None,
            },
            {
                "generation": "lo.",
                "prompt_token_count": None,
                "generation_token_count": 3,
                "stop_reason": None,
            },
            {
                "generation": "",
                "prompt_token_count": None,
                "generation_token_count": 4,
                "stop_reason": "stop",
                **METRICS,
            },
        ]
    )


def nova_stream() -> bytes:
    return b"".join(
        chunk(item)
        for item in [
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": "Hel"}, "contentBlockIndex": 0}},
            {"contentBlockDelta": {"delta": {"text": "lo."}, "contentBlockIndex": 0}},
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
            {
                "metadata": {
                    "usage": {"inputTokens": 10, "outputTokens": 4, "cacheReadInputTokenCount": 20}
                },
                **METRICS,
            },
        ]
    )


def unknown_family_stream() -> bytes:
    return b"".join(
        chunk(item)
        for item in [
            {"text": "Hel", "is_finished": False},
            {"text": "lo.", "is_finished": False},
            {"is_finished": True, "finish_reason": "COMPLETE", **METRICS},
        ]
    )


@pytest.mark.parametrize(
    ("stream", "model", "chunks", "reasons", "response_model"),
    [
        (anthropic_stream, SONNET, 2, ["end_turn"], "claude-sonnet-4-20250514"),
        (llama_stream, "meta.llama3-1-8b-instruct-v1:0", 2, ["stop"], None),
        (nova_stream, "us.amazon.nova-lite-v1:0", 2, ["end_turn"], None),
        # Unknown: every chunk counts as output; usage from Bedrock's own metrics.
        (unknown_family_stream, "cohere.command-r-v1:0", 3, [], None),
    ],
)
@pytest.mark.parametrize("piece", [None, 1, 13])
def test_invoke_streams(
    stream: Any,
    model: str,
    chunks: int,
    reasons: list[str],
    response_model: str | None,
    piece: int | None,
) -> None:
    path = f"/model/{model.replace(':', '%3A')}/invoke-with-response-stream"
    record, complete, _ = parse(
        path, stream(), content_type=EVENT_STREAM, piece=piece, capture=True
    )
    assert complete
    expected_input = 10 if stream is llama_stream else 30  # Llama reports no cache reads
    assert (record.input_tokens, record.output_tokens) == (expected_input, 4)
    assert len(record.chunk_times) == chunks
    assert record.finish_reasons == reasons
    assert record.response_model == response_model
    assert record.provider_latency_s == pytest.approx(0.321)
    if stream is not unknown_family_stream:
        assert record.output_text == "Hello."


def test_an_invoke_stream_cut_inside_a_frame_is_incomplete() -> None:
    data = nova_stream()
    record, complete, _ = parse(
        "/model/us.amazon.nova-lite-v1%3A0/invoke-with-response-stream",
        data[:-10],
        content_type=EVENT_STREAM,
        piece=11,
    )
    assert not complete
    assert record.finish_reasons == ["end_turn"] and record.input_tokens is None


def test_a_chunk_that_is_not_base64_json_is_skipped() -> None:
    data = event("chunk", {"bytes": "%%%"}) + event(
        "chunk", {"bytes": base64.b64encode(b"[1]").decode()}
    )
    data += chunk({"generation": "x", "generation_token_count": 1, "stop_reason": "stop"})
    record, complete, _ = parse(
        "/model/meta.llama3/invoke-with-response-stream", data, content_type=EVENT_STREAM
    )
    assert complete and record.output_tokens == 1


# Errors ----------------------------------------------------------------------------------------


def test_an_upstream_error_body() -> None:
    body = orjson.dumps(
        {"message": "Too many requests", "__type": "com.amazon.coral#ThrottlingException"}
    )
    record = new_record(PROTOCOL, f"/model/{ENCODED_SONNET}/converse", status=429)
    parser = PROTOCOL.response_parser(record, "application/json", "")
    parser.feed(body, 0.0)
    parser.finish()
    assert record.provider_error_type == "ThrottlingException"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "ValidationException"),
        (404, "ResourceNotFoundException"),
        (413, "ValidationException"),
        (429, "ThrottlingException"),
        (502, "ServiceUnavailableException"),
        (504, "ModelTimeoutException"),
        (500, "InternalServerException"),
    ],
)
def test_the_sidecars_own_errors_are_what_botocore_reads(status: int, code: str) -> None:
    body = PROTOCOL.error_body(status, "model-sidecar: upstream 'bedrock' could not be reached")
    parsed = create_parser("rest-json").parse(
        {"status_code": status, "headers": {}, "body": body}, None
    )
    assert parsed["Error"] == {
        "Code": code,
        "Message": "model-sidecar: upstream 'bedrock' could not be reached",
    }
