"""A fixed set of finished calls (every protocol, streams, errors, embeddings, an `other`
operation) and the /metrics text a PrometheusSink serves after them, without the parts that
change from run to run (`_created` timestamps, process and Python runtime metrics)."""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.record import (
    CONNECTION_ERROR,
    OK,
    STREAM_INTERRUPTED,
    UPSTREAM_ERROR,
    CallRecord,
    RequestInfo,
    RetryAttempt,
)

# protocol: (provider name, server address)
_PROVIDERS = {
    "openai": ("openai", "api.openai.com"),
    "anthropic": ("anthropic", "api.anthropic.com"),
    "gemini": ("gcp.gemini", "generativelanguage.googleapis.com"),
}
# Families that describe the process, not the calls: never the same twice.
RUNTIME_PREFIXES = ("process_", "python_")


def call(
    protocol: str,
    operation: str,
    model: str | None,
    *,
    path: str = "/v1/chat/completions",
    stream: bool = False,
    status: int | None = 200,
    outcome: str = OK,
    duration: float = 0.5,
    first_chunk: float | None = None,
    chunk_gaps: Sequence[float] = (),
    **fields: object,
) -> CallRecord:
    """A finished call that arrived at t=100 s and took `duration` seconds; a stream's chunks
    start at `first_chunk` seconds after arrival and follow each other by `chunk_gaps`."""
    provider, server = _PROVIDERS[protocol]
    record = CallRecord(
        upstream=protocol,
        protocol=protocol,
        provider_name=provider,
        method="POST" if operation != "other" else "GET",
        path=path,
        server_address=server,
        server_port=443,
        request=RequestInfo(operation=operation, request_model=model, stream=stream),
    )
    record.start_unix_ns = 1_764_000_000_000_000_000
    record.received = 100.0
    record.end = 100.0 + duration
    record.upstream_wait = duration - 0.0002
    record.http_status = status
    record.outcome = outcome
    if first_chunk is not None:
        record.first_chunk = 100.0 + first_chunk
        times = [record.first_chunk]
        for gap in chunk_gaps:
            times.append(times[-1] + gap)
        record.chunk_times = times
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def known_calls() -> list[CallRecord]:
    """The calls, in the order they finished."""
    return [
        # OpenAI chat, whole body: cached input and reasoning output, priced, measured.
        call(
            "openai", "chat", "gpt-4o", duration=0.5, response_model="gpt-4o-2024-08-06",
            response_id="chatcmpl-1", finish_reasons=["stop"], input_tokens=120,
            output_tokens=40, cache_read_tokens=100, reasoning_tokens=16, cost_usd=0.0004,
            confidence=0.93,
        ),
        # OpenAI chat stream: 5 chunks, usage injected, retried by the app's SDK.
        call(
            "openai", "chat", "gpt-4o", stream=True, duration=1.2, first_chunk=0.3,
            chunk_gaps=(0.05, 0.2, 0.15, 0.3), response_model="gpt-4o-2024-08-06",
            finish_reasons=["stop"], input_tokens=50, output_tokens=20, client_retry_count=1,
        ),
        # OpenAI legacy completions and embeddings (no output tokens).
        call(
            "openai", "text_completion", "gpt-3.5-turbo-instruct", path="/v1/completions",
            duration=0.2, response_model="gpt-3.5-turbo-instruct", input_tokens=9,
            output_tokens=7, cost_usd=0.00002,
        ),
        call(
            "openai", "embeddings", "text-embedding-3-small", path="/v1/embeddings",
            duration=0.04, response_model="text-embedding-3-small", input_tokens=8,
            cost_usd=0.0000002,
        ),
        # OpenAI Responses API stream with reasoning.
        call(
            "openai", "chat", "o4-mini", path="/v1/responses", stream=True, duration=3.0,
            first_chunk=1.5, chunk_gaps=(0.5, 0.5, 0.4), response_model="o4-mini-2025-04-16",
            input_tokens=30, output_tokens=200, reasoning_tokens=150, cost_usd=0.001,
        ),
        # Anthropic chat: input = 50 + cache read 200 + cache creation 50; two sidecar retries.
        call(
            "anthropic", "chat", "claude-sonnet-4", path="/v1/messages", duration=2.5,
            response_model="claude-sonnet-4-20250514", input_tokens=300, output_tokens=60,
            cache_read_tokens=200, cache_creation_tokens=50, cost_usd=0.002, sidecar_retries=2,
            retry_attempts=[RetryAttempt(2, "503", 0.1, 0), RetryAttempt(3, "503", 0.2, 0)],
        ),
        # Anthropic rate limited: no usage.
        call(
            "anthropic", "chat", "claude-sonnet-4", path="/v1/messages", status=429,
            outcome=UPSTREAM_ERROR, duration=0.03,
        ),
        # Gemini stream with thoughts: output = candidates 40 + thoughts 25.
        call(
            "gemini", "generate_content", "gemini-2.5-flash",
            path="/v1beta/models/gemini-2.5-flash:streamGenerateContent", stream=True,
            duration=0.9, first_chunk=0.25, chunk_gaps=(0.3, 0.3),
            response_model="gemini-2.5-flash", input_tokens=12, output_tokens=65,
            reasoning_tokens=25, cost_usd=0.0001, confidence=0.4, low_confidence=True,
        ),
        # Gemini embeddings.
        call(
            "gemini", "embeddings", "gemini-embedding-001",
            path="/v1beta/models/gemini-embedding-001:batchEmbedContents", duration=0.06,
            input_tokens=5,
        ),
        # Gemini stream cut off upstream: two chunks, no usage.
        call(
            "gemini", "generate_content", "gemini-2.5-flash",
            path="/v1beta/models/gemini-2.5-flash:streamGenerateContent", stream=True,
            outcome=STREAM_INTERRUPTED, duration=0.7, first_chunk=0.2, chunk_gaps=(0.1,),
            response_model="gemini-2.5-flash",
        ),
        # OpenAI unreachable: no status at all.
        call(
            "openai", "chat", "gpt-4o", status=None, outcome=CONNECTION_ERROR, duration=0.01,
        ),
        # A path no protocol classifies (listing models): operation `other`, no model.
        call("openai", "other", None, path="/v1/models", duration=0.02),
    ]  # fmt: skip


def stable_exposition(text: str) -> str:
    """/metrics text without `_created` samples and without process and runtime families."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            name = line.split(" ", 3)[2]
        else:
            name = line.partition("{")[0].partition(" ")[0]
        if name.startswith(RUNTIME_PREFIXES) or name.endswith("_created"):
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"
