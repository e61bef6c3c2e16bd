"""Ollama's native API: classification, NDJSON streams parsed line by line, whole bodies."""

from __future__ import annotations

import orjson
import pytest

from sidecar.protocols.ndjson import MAX_LINE_BYTES
from sidecar.protocols.ollama import (
    OllamaBodyParser,
    OllamaProtocol,
    OllamaStreamParser,
    ollama_endpoint,
)
from tests.helpers.wire import WAYS, new_record, parse

OLLAMA = OllamaProtocol()
NDJSON = "application/x-ndjson"
JSON = "application/json; charset=utf-8"
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}


def line(payload: dict[str, object]) -> bytes:
    return orjson.dumps(payload) + b"\n"


def chat_line(text: str, **extra: object) -> bytes:
    message = {"role": "assistant", "content": text}
    return line({"model": "llama3.2", "created_at": "2023-11-14T22:13:20.06Z",
                 "message": message, "done": False, **extra})  # fmt: skip


FINAL = {
    "done_reason": "stop",
    "done": True,
    "total_duration": 78266667,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 60000000,
    "eval_count": 3,
    "eval_duration": 16666667,
}
CHAT_STREAM = (
    chat_line("Passes")
    + chat_line(" it")
    + chat_line(" on")
    + line({"model": "llama3.2", "message": {"role": "assistant", "content": ""}, **FINAL})
)
GENERATE_STREAM = (
    line({"model": "llama3.2", "response": "Once", "done": False})
    + line({"model": "llama3.2", "response": " upon", "done": False})
    + line({"model": "llama3.2", "response": "", "done": True, "done_reason": "length",
            "context": [1, 2, 3], "prompt_eval_count": 9, "eval_count": 2})
)  # fmt: skip


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/api/chat", "chat"),
        ("/api/generate/", "generate"),
        ("/api/embed", "embed"),
        ("/api/tags", "tags"),
        ("/api/blobs/sha256:abc", "blobs"),
        ("/api/v1/chat/completions", None),
        ("/api", None),
        ("/v1/chat/completions", None),
    ],
)
def test_endpoints(path: str, endpoint: str | None) -> None:
    assert ollama_endpoint(path) == endpoint
    assert OLLAMA.claims(path) is (endpoint is not None)


def test_classify() -> None:
    body = {**CHAT, "options": {"temperature": 0.1, "top_p": 0.9, "num_predict": 64, "seed": 3}}
    info = OLLAMA.classify("POST", "/api/chat", "", body)
    assert (info.operation, info.request_model, info.stream) == ("chat", "llama3.2", True)
    assert (info.temperature, info.top_p, info.max_tokens, info.seed) == (0.1, 0.9, 64, 3)
    whole = OLLAMA.classify("POST", "/api/generate", "", {"model": "m", "stream": False})
    assert (whole.operation, whole.stream) == ("text_completion", False)
    embed = OLLAMA.classify("POST", "/api/embed", "", {"model": "m", "input": ["a"]})
    assert (embed.operation, embed.stream) == ("embeddings", False)
    assert OLLAMA.classify("POST", "/api/show", "", {"name": "m"}).operation == "other"
    assert OLLAMA.classify("GET", "/api/tags", "", None).request_model is None
    assert OLLAMA.classify("POST", "/api/chat", "", {**CHAT, "logprobs": True}).logprobs


@pytest.mark.parametrize("way", WAYS)
def test_chat_stream(way: str) -> None:
    record = new_record(OLLAMA, "/api/chat", CHAT, capture=True)
    parser = parse(OLLAMA, record, NDJSON, CHAT_STREAM, way)
    assert isinstance(parser, OllamaStreamParser) and parser.complete
    assert (record.input_tokens, record.output_tokens) == (26, 3)
    assert record.response_model == "llama3.2"
    assert record.finish_reasons == ["stop"]
    assert record.output_text == "Passes it on"
    # One chunk per content line; the closing line carries none.
    assert len(record.chunk_times) == 3
    if way == "whole":
        assert record.first_chunk == 0.0


def test_first_chunk_is_the_first_content_line() -> None:
    record = new_record(OLLAMA, "/api/chat", CHAT)
    parser = OLLAMA.response_parser(record, NDJSON, "")
    parser.feed(chat_line(""), 1.0)  # a line without content (e.g. a role only)
    parser.feed(chat_line("Hel")[:20], 2.0)
    parser.feed(chat_line("Hel")[20:], 3.0)
    parser.finish()
    assert record.first_chunk == 3.0


def test_generate_stream() -> None:
    record = new_record(OLLAMA, "/api/generate", {"model": "llama3.2", "prompt": "x"})
    parser = parse(OLLAMA, record, NDJSON, GENERATE_STREAM, "pieces")
    assert parser.complete
    assert (record.input_tokens, record.output_tokens) == (9, 2)
    assert record.finish_reasons == ["length"]
    assert record.request.operation == "text_completion"


@pytest.mark.parametrize("cut", [1, 40, len(CHAT_STREAM) - 30, len(CHAT_STREAM) - 1])
def test_a_stream_cut_mid_line_is_incomplete_and_never_a_crash(cut: int) -> None:
    record = new_record(OLLAMA, "/api/chat", CHAT, capture=True)
    parser = parse(OLLAMA, record, NDJSON, CHAT_STREAM[:cut], "bytewise")
    assert not parser.complete
    assert record.input_tokens is None and record.finish_reasons == []


def test_an_error_line_ends_the_stream_incomplete() -> None:
    stream = chat_line("Hi") + b'{"error":"an error was encountered while running the model"}\n'
    record = new_record(OLLAMA, "/api/chat", CHAT)
    parser = parse(OLLAMA, record, NDJSON, stream)
    assert not parser.complete and len(record.chunk_times) == 1


def test_an_oversized_line_is_skipped_with_bounded_memory() -> None:
    huge = b'{"model":"llama3.2","message":{"content":"' + b"x" * (MAX_LINE_BYTES + 10) + b'"}}\n'
    record = new_record(OLLAMA, "/api/chat", CHAT)
    parser = OLLAMA.response_parser(record, NDJSON, "")
    for start in range(0, len(huge), 1 << 20):
        parser.feed(huge[start : start + (1 << 20)], 0.0)
    parser.feed(CHAT_STREAM, 1.0)
    parser.finish()
    assert parser.complete and record.input_tokens == 26


def test_whole_bodies_and_embeddings() -> None:
    record = new_record(OLLAMA, "/api/chat", {**CHAT, "stream": False}, capture=True)
    body = {"model": "llama3.2", "message": {"role": "assistant", "content": "Hello"}, **FINAL}
    assert isinstance(parse(OLLAMA, record, JSON, orjson.dumps(body)), OllamaBodyParser)
    assert (record.input_tokens, record.output_tokens, record.output_text) == (26, 3, "Hello")
    assert record.first_chunk is None
    embed = new_record(OLLAMA, "/api/embed", {"model": "all-minilm", "input": ["a", "b"]})
    answer = {"model": "all-minilm", "embeddings": [[0.1], [0.2]], "prompt_eval_count": 4}
    parse(OLLAMA, embed, JSON, orjson.dumps(answer))
    assert (embed.input_tokens, embed.output_tokens) == (4, None)


def test_logprobs_feed_confidence() -> None:
    stream = (
        chat_line("a", logprobs=[{"token": "a", "logprob": -0.5}])
        + chat_line("b", logprobs=[{"token": "b", "logprob": -0.25}])
        + line({"model": "llama3.2", "message": {"content": ""}, **FINAL})
    )
    record = new_record(OLLAMA, "/api/chat", {**CHAT, "logprobs": True})
    parse(OLLAMA, record, NDJSON, stream, "pieces")
    assert (record.logprob_count, record.logprob_sum) == (2, -0.75)


def test_errors() -> None:
    record = new_record(OLLAMA, "/api/chat", CHAT, status=404)
    parse(OLLAMA, record, JSON, b'{"error":"model \\"nope\\" not found, try pulling it first"}')
    assert record.provider_error_type is None  # Ollama's errors carry only a message
    assert orjson.loads(OLLAMA.error_body(400, "no upstream")) == {"error": "no upstream"}
