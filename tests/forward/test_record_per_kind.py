"""Each kind of call leaves a CallRecord with the exact reported usage, ordered timings, outcome."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from sidecar.app import Sidecar
from sidecar.record import CallRecord
from tests.helpers.records import RecordingSink

USER = [{"role": "user", "content": "Explain tail latency to an on-call engineer."}]
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "Explain tail latency."}]}]}


def sse_payloads(raw: bytes) -> list[Any]:
    """Every JSON `data:` payload of an SSE body (the test's own, independent reading)."""
    payloads = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(
            line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")
        )
        if data and data != "[DONE]":
            payloads.append(json.loads(data))
    return payloads


def openai_usage(usage: dict[str, Any]) -> dict[str, int | None]:
    return {
        "input": usage["prompt_tokens"],
        "output": usage.get("completion_tokens"),
        "cache_read": (usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
        "reasoning": (usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
    }


def responses_usage(usage: dict[str, Any]) -> dict[str, int | None]:
    return {
        "input": usage["input_tokens"],
        "output": usage["output_tokens"],
        "cache_read": usage["input_tokens_details"]["cached_tokens"],
        "reasoning": usage["output_tokens_details"]["reasoning_tokens"],
    }


def gemini_usage(meta: dict[str, Any]) -> dict[str, int | None]:
    return {
        "input": meta["promptTokenCount"],
        "output": meta.get("candidatesTokenCount", 0) + meta.get("thoughtsTokenCount", 0),
        "cache_read": meta.get("cachedContentTokenCount"),
        "reasoning": meta.get("thoughtsTokenCount"),
    }


def expected_usage(kind: str, raw: bytes) -> dict[str, int | None]:
    """The usage the provider reported, read from the bytes the app received."""
    if kind in ("chat", "completions", "embeddings", "reasoning"):
        return openai_usage(json.loads(raw)["usage"])
    if kind == "completions_stream":
        raise AssertionError("usage of an un-asked-for stream is not visible to the app")
    if kind == "responses":
        return responses_usage(json.loads(raw)["usage"])
    if kind == "responses_stream":
        done = [p for p in sse_payloads(raw) if p.get("type") == "response.completed"]
        return responses_usage(done[-1]["response"]["usage"])
    if kind == "gemini_array_stream":
        return gemini_usage(json.loads(raw)[-1]["usageMetadata"])
    raise AssertionError(kind)


CASES = [
    # kind, path, body, operation, streaming
    ("chat", "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": USER}, "chat", False),
    ("reasoning", "/v1/chat/completions", {"model": "o3-mini", "messages": USER}, "chat", False),
    (
        "completions",
        "/v1/completions",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon"},
        "text_completion",
        False,
    ),
    (
        "embeddings",
        "/v1/embeddings",
        {"model": "text-embedding-3-small", "input": ["a", "b c"]},
        "embeddings",
        False,
    ),
    ("responses", "/v1/responses", {"model": "o3-mini", "input": "Hello"}, "chat", False),
    (
        "responses_stream",
        "/v1/responses",
        {"model": "gpt-4o-mini", "input": "Hello", "stream": True},
        "chat",
        True,
    ),
    (
        "gemini_array_stream",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        GEMINI_BODY,
        "generate_content",
        True,
    ),
]


async def call(sidecar: Sidecar, path: str, body: object) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.proxy_url + path, json=body) as response:
            return response.status, await response.read()


def assert_ordered(record: CallRecord) -> None:
    assert record.upstream_headers is not None
    assert record.received <= record.upstream_headers <= record.end
    if record.first_chunk is not None:
        assert record.upstream_headers <= record.first_chunk <= record.chunk_times[-1] <= record.end


@pytest.mark.parametrize(("kind", "path", "body", "operation", "streaming"), CASES)
async def test_record_holds_the_reported_usage(
    sidecar: Sidecar,
    records: RecordingSink,
    kind: str,
    path: str,
    body: dict[str, Any],
    operation: str,
    streaming: bool,
) -> None:
    status, raw = await call(sidecar, path, body)
    assert status == 200
    (record,) = await records.wait_for(1)
    expected = expected_usage(kind, raw)
    assert record.request.operation == operation
    assert record.request.stream is streaming
    assert record.outcome == "ok" and record.http_status == 200
    assert record.input_tokens == expected["input"]
    assert record.output_tokens == expected["output"]
    assert (record.cache_read_tokens or 0) == (expected["cache_read"] or 0)
    assert (record.reasoning_tokens or 0) == (expected["reasoning"] or 0)
    assert (record.first_chunk is not None) is streaming
    assert_ordered(record)


async def test_reasoning_and_cached_tokens_are_not_lost(
    sidecar: Sidecar, records: RecordingSink
) -> None:
    """The profiles used above really report cache and reasoning tokens, so the test has teeth."""
    await call(sidecar, "/v1/chat/completions", {"model": "o3-mini", "messages": USER})
    await call(sidecar, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": USER})
    reasoning, cached = await records.wait_for(2)
    assert reasoning.reasoning_tokens and reasoning.reasoning_tokens > 0
    assert reasoning.output_tokens and reasoning.output_tokens > reasoning.reasoning_tokens
    assert cached.cache_read_tokens and cached.input_tokens
    assert 0 < cached.cache_read_tokens < cached.input_tokens


async def test_completions_stream_gets_usage_by_injection(
    sidecar: Sidecar, records: RecordingSink
) -> None:
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon", "stream": True}
    status, raw = await call(sidecar, "/v1/completions", body)
    assert status == 200 and b'"usage"' not in raw
    (record,) = await records.wait_for(1)
    assert record.stream_usage_injected
    assert record.request.operation == "text_completion"
    assert record.input_tokens and record.output_tokens
    assert record.first_chunk is not None


@pytest.mark.parametrize(
    ("path", "body", "operation"),
    [
        (
            "/v1/messages/count_tokens",
            {"model": "claude-sonnet-4", "messages": USER},
            "other",
        ),
        ("/v1beta/models/gemini-2.0-flash:countTokens", GEMINI_BODY, "other"),
        (
            "/v1beta/models/gemini-embedding-001:embedContent",
            {"content": {"parts": [{"text": "embed me"}]}},
            "embeddings",
        ),
    ],
)
async def test_auxiliary_operations_are_classified(
    sidecar: Sidecar, records: RecordingSink, path: str, body: object, operation: str
) -> None:
    status, _ = await call(sidecar, path, body)
    assert status == 200
    (record,) = await records.wait_for(1)
    assert record.request.operation == operation
    assert record.outcome == "ok"
    assert record.output_tokens is None
