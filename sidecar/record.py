"""CallRecord: the one structure that every stage after forwarding reads."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Outcomes of a call, as they appear in the `outcome` label.
OK = "ok"
UPSTREAM_ERROR = "upstream_error"
CONNECTION_ERROR = "connection_error"
TIMEOUT = "timeout"
CLIENT_CANCELLED = "client_cancelled"
STREAM_INTERRUPTED = "stream_interrupted"
OUTCOMES = (OK, UPSTREAM_ERROR, CONNECTION_ERROR, TIMEOUT, CLIENT_CANCELLED, STREAM_INTERRUPTED)


@dataclass(slots=True)
class RequestInfo:
    """What a protocol module learns from the request before it is forwarded."""

    operation: str = "other"
    request_model: str | None = None
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    choice_count: int | None = None
    # Whether the response carries token log-probabilities (asked by the app, or added
    # by the sidecar with confidence.request_logprobs); parsers read them only then.
    logprobs: bool = False
    # The decoded JSON body, when it was JSON; later stages (content capture,
    # repeatability) read it. Never logged or exported unless the operator opts in.
    body: Any = None


@dataclass(frozen=True, slots=True)
class RetryAttempt:
    """One extra upstream attempt by the sidecar: why, when, and after how long a wait."""

    attempt: int  # 2 for the first retry
    reason: str  # the previous attempt's status (e.g. "503") or "connection_error"
    delay_s: float
    start_unix_ns: int


@dataclass(slots=True)
class CallRecord:
    """Everything measured about one call, filled by the proxy and then by enrich/."""

    # Where the call went.
    upstream: str
    protocol: str
    provider_name: str
    method: str
    path: str
    server_address: str
    server_port: int

    # What was asked.
    request: RequestInfo = field(default_factory=RequestInfo)

    # Timings: `start_unix_ns` is wall-clock (for spans); the rest are
    # time.perf_counter() seconds, comparable with each other only.
    start_unix_ns: int = 0
    received: float = 0.0
    upstream_headers: float | None = None
    first_chunk: float | None = None
    end: float = 0.0
    chunk_times: list[float] = field(default_factory=list)
    upstream_wait: float = 0.0
    client_wait: float = 0.0

    # What came back.
    http_status: int | None = None
    outcome: str = OK
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    provider_error_type: str | None = None
    stream_usage_injected: bool = False
    response_bytes: int = 0

    # Retries and trace context.
    client_retry_count: int = 0
    # A hash of the app's Idempotency-Key header, when it sent one.
    idempotency_key: bytes | None = None
    # Set by enrich/retries.py: the key was seen on an earlier call within the window.
    repeated_idempotency_key: bool = False
    sidecar_retries: int = 0
    # One entry per extra upstream attempt the sidecar made (span events, retry reasons).
    retry_attempts: list[RetryAttempt] = field(default_factory=list)
    trace_id: int | None = None
    span_id: int | None = None
    parent_span_id: int | None = None
    trace_sampled: bool = True

    # Token log-probabilities of the first choice, accumulated by the parsers.
    logprob_sum: float = 0.0
    logprob_count: int = 0
    logprob_min: float = 0.0
    # A confidence the upstream reported itself (the configured response header).
    reported_confidence: float | None = None

    # Filled by enrich/ and experiments/ (on the call path for non-streaming responses,
    # which get response headers; the `*_done` flags keep the pipeline from redoing it).
    cost_done: bool = False
    cost_usd: float | None = None
    confidence_done: bool = False
    confidence: float | None = None
    confidence_min: float | None = None
    low_confidence: bool = False
    repeat_result: str | None = None
    experiment: str = ""
    variant: str = ""
    # Set by the proxy: the id sent to the app in x-model-sidecar-request-id (feedback).
    request_id: str = ""
    # Shared by a shadow call and its control call (both records carry it).
    pair_id: str = ""
    # Chosen for the audit sample (audit.sample_rate); its output is kept until written.
    audit: bool = False
    # Response content, kept only when the operator opted in to content capture, or
    # briefly (hashed, then dropped) for repeatability and the JSON confidence field:
    # when `keep_output` is true, parsers join the output text into `output_text` and the
    # first choice's tool calls (name, arguments) into `output_tool_calls`.
    capture_content: bool = False
    output_for_enrichment: bool = False
    output_text: str | None = None
    output_tool_calls: list[str] = field(default_factory=list)

    def add_logprobs(self, logprobs: Iterable[Any]) -> None:
        """Accumulate token log-probabilities (non-numbers are skipped)."""
        total = self.logprob_sum
        count = self.logprob_count
        lowest = self.logprob_min
        for value in logprobs:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if value > 0.0 or math.isnan(value):
                    continue
                total += value
                lowest = value if count == 0 or value < lowest else lowest
                count += 1
        self.logprob_sum, self.logprob_count, self.logprob_min = total, count, lowest

    @property
    def keep_output(self) -> bool:
        """Whether parsers should keep the output text and tool calls of the first choice."""
        return self.capture_content or self.output_for_enrichment

    @property
    def client_retry(self) -> bool:
        """Whether the app sent this call as a retry (SDK retry count or a repeated key)."""
        return self.client_retry_count > 0 or self.repeated_idempotency_key

    @property
    def duration(self) -> float:
        """Seconds from the request's arrival to the last byte forwarded."""
        return self.end - self.received

    @property
    def time_to_first_chunk(self) -> float | None:
        """Seconds from arrival to the first content chunk (streams only)."""
        if self.first_chunk is None:
            return None
        return self.first_chunk - self.received

    @property
    def overhead(self) -> float:
        """Seconds spent in the sidecar itself: total minus waiting on upstream and client."""
        return max(0.0, self.duration - self.upstream_wait - self.client_wait)

    @property
    def error_type(self) -> str:
        """Low-cardinality error label: empty on success, else status or outcome word."""
        if self.outcome == OK:
            return ""
        if self.outcome == UPSTREAM_ERROR:
            return str(self.http_status)
        return self.outcome
