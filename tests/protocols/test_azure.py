"""Azure OpenAI: deployment and v1 paths, its stream (prompt filter chunk first), its errors."""

from __future__ import annotations

import orjson
import pytest

from sidecar.protocols.azure import AzureProtocol, azure_call
from sidecar.protocols.openai_chat import ChatBodyParser, ChatStreamParser
from sidecar.protocols.openai_responses import ResponsesBodyParser
from tests.helpers.wire import WAYS, new_record, parse, split

AZURE = AzureProtocol()
DEPLOYMENT_CHAT = "/openai/deployments/prod-gpt4o/chat/completions"
SSE = "text/event-stream; charset=utf-8"
JSON = "application/json"
MESSAGES = [{"role": "user", "content": "Hi"}]

# Azure's stream as it arrives (keys sorted, every chunk with `"usage":null` once the
# sidecar asked for usage): the prompt filter chunk, the role chunk, two content chunks,
# the finish reason, then the usage chunk include_usage adds.
_HEAD = b'"created":1700000000,"id":"chatcmpl-7","model":"gpt-4o-2024-08-06",'
_TAIL = b'"object":"chat.completion.chunk","system_fingerprint":"fp_1"'
FILTER_CHUNK = (
    b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":'
    b'[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},'
    b'"prompt_index":0}]}\n\n'
)


def chunk(choice: bytes, usage: bool) -> bytes:
    trailer = b',"usage":null' if usage else b""
    return b'data: {"choices":[' + choice + b"]," + _HEAD + _TAIL + trailer + b"}\n\n"


def azure_stream(injected: bool) -> bytes:
    parts = [
        FILTER_CHUNK,
        chunk(
            b'{"content_filter_results":{},"delta":{"content":"","role":"assistant"},'
            b'"finish_reason":null,"index":0,"logprobs":null}',
            injected,
        ),
        chunk(
            b'{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},'
            b'"delta":{"content":"Measure"},"finish_reason":null,"index":0,"logprobs":null}',
            injected,
        ),
        chunk(
            b'{"content_filter_results":{},"delta":{"content":" it"},"finish_reason":null,'
            b'"index":0,"logprobs":null}',
            injected,
        ),
        chunk(
            b'{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,'
            b'"logprobs":null}',
            injected,
        ),
    ]
    if injected:
        parts.append(
            b'data: {"choices":[],' + _HEAD + _TAIL + b',"usage":{"completion_tokens":2,'
            b'"completion_tokens_details":{"reasoning_tokens":0},"prompt_tokens":11,'
            b'"prompt_tokens_details":{"cached_tokens":0},"total_tokens":13}}\n\n'
        )
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


@pytest.mark.parametrize(
    ("path", "deployment", "endpoint"),
    [
        (DEPLOYMENT_CHAT, "prod-gpt4o", "chat/completions"),
        ("/openai/deployments/prod-gpt4o/chat/completions/", "prod-gpt4o", "chat/completions"),
        ("/openai/deployments/my%20dep/completions", "my dep", "completions"),
        ("/openai/deployments/emb/embeddings", "emb", "embeddings"),
        ("/openai/deployments/d/extensions/chat/completions", "d", "chat/completions"),
        ("/openai/deployments/whisper/audio/transcriptions", "whisper", None),
        ("/openai/v1/chat/completions", None, "chat/completions"),
        ("/openai/v1/responses", None, "responses"),
        ("/openai/responses", None, "responses"),
        ("/openai/v1/embeddings", None, "embeddings"),
        ("/openai/v1/models", None, None),
        # Malformed: no deployment, no endpoint.
        ("/openai/deployments//chat/completions", None, None),
        ("/openai/deployments/prod-gpt4o", "prod-gpt4o", None),
        ("/openai/deployments", None, None),
    ],
)
def test_paths(path: str, deployment: str | None, endpoint: str | None) -> None:
    assert azure_call(path) == (deployment, endpoint)


def test_request_model_is_the_body_model_else_the_deployment() -> None:
    named = AZURE.classify("POST", DEPLOYMENT_CHAT, "api-version=2024-10-21", {"model": "x"})
    assert named.request_model == "x"
    unnamed = AZURE.classify("POST", DEPLOYMENT_CHAT, "", {"messages": MESSAGES, "n": 2})
    assert unnamed.request_model == "prod-gpt4o"
    assert unnamed.operation == "chat" and unnamed.api_type == "chat_completions"
    assert unnamed.choice_count == 2
    v1 = AZURE.classify("POST", "/openai/v1/responses", "", {"model": "o3-mini", "input": "x"})
    assert (v1.request_model, v1.operation, v1.api_type) == ("o3-mini", "chat", "responses")
    embeddings = AZURE.classify("POST", "/openai/deployments/emb/embeddings", "", {"input": "x"})
    assert (embeddings.operation, embeddings.request_model) == ("embeddings", "emb")
    legacy = AZURE.classify("POST", "/openai/deployments/i/completions", "", {"prompt": "x"})
    assert legacy.operation == "text_completion" and legacy.api_type is None
    # A multipart form's model field (audio) and no body at all.
    form = {"model": "gpt-4o-transcribe", "language": "en"}
    audio = AZURE.classify("POST", "/openai/deployments/t/audio/transcriptions", "", form)
    assert (audio.operation, audio.request_model) == ("other", "gpt-4o-transcribe")
    bare = AZURE.classify("POST", "/openai/deployments/t/audio/transcriptions", "", None)
    assert bare.request_model == "t"
    malformed = AZURE.classify("POST", "/openai/deployments//chat/completions", "", None)
    assert (malformed.operation, malformed.request_model) == ("other", None)
    assert AZURE.classify("GET", DEPLOYMENT_CHAT, "", None).operation == "other"


@pytest.mark.parametrize("way", WAYS)
def test_stream_skips_the_prompt_filter_chunk(way: str) -> None:
    body = {"messages": MESSAGES, "stream": True}
    record = new_record(AZURE, DEPLOYMENT_CHAT, body)
    parser = parse(AZURE, record, SSE, azure_stream(injected=True), way)
    assert isinstance(parser, ChatStreamParser) and parser.complete
    assert record.response_model == "gpt-4o-2024-08-06"
    assert record.response_id == "chatcmpl-7"
    assert (record.input_tokens, record.output_tokens) == (11, 2)
    assert record.finish_reasons == ["stop"]
    # Two content chunks; neither the filter chunk nor the role chunk counts.
    assert len(record.chunk_times) == 2


@pytest.mark.parametrize("piece_size", [1, 3, 64, 100_000])
def test_the_filter_chunk_reaches_the_app_and_the_injected_usage_does_not(
    piece_size: int,
) -> None:
    body = {"messages": MESSAGES, "stream": True}
    info = AZURE.classify("POST", DEPLOYMENT_CHAT, "", body)
    injected = AZURE.inject_stream_usage(info, body, orjson.dumps(body))
    assert injected is not None
    assert orjson.loads(injected)["stream_options"] == {"include_usage": True}
    stream_filter = AZURE.stream_filter()
    out = [stream_filter.feed(piece) for piece in split(azure_stream(injected=True), piece_size)]
    out.append(stream_filter.flush())
    delivered = b"".join(out)
    assert delivered == azure_stream(injected=False)
    assert delivered.startswith(FILTER_CHUNK)


def test_whole_bodies_use_openais_parsers() -> None:
    chat = new_record(AZURE, DEPLOYMENT_CHAT, {"messages": MESSAGES})
    reply = {
        "choices": [{"finish_reason": "stop", "index": 0, "message": {"content": "Hi"}}],
        "id": "chatcmpl-1",
        "model": "gpt-4o-2024-08-06",
        "prompt_filter_results": [],
        "usage": {"completion_tokens": 1, "prompt_tokens": 9, "total_tokens": 10},
    }
    assert isinstance(parse(AZURE, chat, JSON, orjson.dumps(reply)), ChatBodyParser)
    assert (chat.response_model, chat.input_tokens, chat.output_tokens) == (
        "gpt-4o-2024-08-06",
        9,
        1,
    )
    responses = new_record(AZURE, "/openai/responses", {"model": "gpt-4o-mini", "input": "x"})
    answer = {
        "id": "resp_1",
        "model": "gpt-4o-mini-2024-07-18",
        "status": "completed",
        "output": [],
        "usage": {
            "input_tokens": 20,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 70,
            "output_tokens_details": {"reasoning_tokens": 64},
        },
    }
    assert isinstance(parse(AZURE, responses, JSON, orjson.dumps(answer)), ResponsesBodyParser)
    assert (responses.input_tokens, responses.cache_read_tokens) == (20, 4)
    assert (responses.output_tokens, responses.reasoning_tokens) == (70, 64)


def test_errors_in_azures_shape() -> None:
    record = new_record(AZURE, DEPLOYMENT_CHAT, {"messages": MESSAGES}, status=404)
    not_found = {"error": {"code": "DeploymentNotFound", "message": "The API deployment ..."}}
    parse(AZURE, record, JSON, orjson.dumps(not_found))
    assert record.provider_error_type == "DeploymentNotFound"
    assert orjson.loads(AZURE.error_body(400, "no upstream")) == {
        "error": {"code": "400", "message": "no upstream"}
    }


def test_the_api_key_header_is_azures_credential() -> None:
    assert AZURE.carries_credentials({"api-key": "secret"}, "")
    assert not AZURE.carries_credentials({"authorization": "Bearer x"}, "")
