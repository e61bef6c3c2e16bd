"""CallRecord: the one structure that every stage after forwarding reads."""

from __future__ import annotations

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
    # The decoded JSON body, when it was JSON; later stages (content capture,
    # repeatability) read it. Never logged or exported unless the operator opts in.
    body: Any = None


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
    sidecar_retries: int = 0
    trace_id: int | None = None
    span_id: int | None = None
    parent_span_id: int | None = None
    trace_sampled: bool = True

    # Filled by enrich/ and experiments/.
    cost_usd: float | None = None
    confidence: float | None = None
    experiment: str = ""
    variant: str = ""
    # Response content, kept only when the operator opted in to content capture
    # (then parsers join the output text into `output_text`).
    capture_content: bool = False
    output_text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

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
