"""CallRecord: the one structure that every stage after forwarding reads, and CallOptions: what
the stages asked of a call before it was forwarded.

Data flows one way. Before a call is forwarded, every stage says what it needs of it (the
`NEED_*` flags, combined with `|` into one frozen `CallOptions`); the exchange and the parser
then write the record; the stages add their derived values in their declared order; the
sinks only read. Nothing reads back a field that a later step writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# What a stage (or a sink's opt-in) can need of a call, decided before it is forwarded.
# Plain ints so that combining them on the call path allocates nothing.
NEED_OUTPUT = 1  # parsers keep the first choice's output text and tool calls
NEED_REQUEST_BODY = 2  # the decoded request body travels with the record (within a budget)
NEED_FINGERPRINT = 4  # a hash of the request, for repeatability
NEED_STREAM_USAGE = 8  # ask a stream to report usage (removed before the app sees it)
NEED_LOGPROBS = 16  # ask for token logprobs (removed before the app sees them)
NEED_AUDIT = 32  # the call is in the audit sample
_ALL_NEEDS = 63

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
    top_k: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop_sequences: tuple[str, ...] | None = None
    # The output modality asked for: `text`, `json`, `image` or `speech`.
    output_type: str | None = None
    # Embeddings: the requested encoding formats and number of dimensions.
    encoding_formats: tuple[str, ...] | None = None
    dimensions: int | None = None
    # The API flavour within a protocol (OpenAI: `chat_completions`, `responses`).
    api_type: str | None = None
    # OpenAI's `service_tier` as requested.
    service_tier: str | None = None
    # A conversation or earlier response the request continues (OpenAI Responses API).
    conversation_id: str | None = None
    previous_response_id: str | None = None
    # Whether the response carries token log-probabilities (asked by the app, or added
    # by the sidecar with confidence.request_logprobs); parsers read them only then.
    logprobs: bool = False


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What the stages asked of one call before it was forwarded; read, never changed, after.

    Built from `NEED_*` flags by `options_for`, which hands out one shared instance per
    combination (nothing is allocated per call).
    """

    keep_output: bool = False
    keep_request_body: bool = False
    fingerprint: bool = False
    stream_usage: bool = False
    logprobs: bool = False
    audit: bool = False


_OPTIONS = tuple(
    CallOptions(
        keep_output=bool(needs & NEED_OUTPUT),
        keep_request_body=bool(needs & NEED_REQUEST_BODY),
        fingerprint=bool(needs & NEED_FINGERPRINT),
        stream_usage=bool(needs & NEED_STREAM_USAGE),
        logprobs=bool(needs & NEED_LOGPROBS),
        audit=bool(needs & NEED_AUDIT),
    )
    for needs in range(_ALL_NEEDS + 1)
)
NO_OPTIONS = _OPTIONS[0]


def options_for(needs: int) -> CallOptions:
    """The options of a call whose stages need `needs` (`NEED_*` flags combined)."""
    return _OPTIONS[needs & _ALL_NEEDS]


@dataclass(frozen=True, slots=True)
class RetryAttempt:
    """One extra upstream attempt by the sidecar: why, when, and after how long a wait."""

    attempt: int  # 2 for the first retry
    reason: str  # the previous attempt's status (e.g. "503") or "connection_error"
    delay_s: float
    start_unix_ns: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One quota window a provider reported in its response headers (protocols/ratelimit*.py):
    its kind (`requests`, `tokens`, `input_tokens`, `output_tokens`), and what the headers said
    of it; None where a value was missing or malformed."""

    kind: str
    limit: float | None = None
    remaining: float | None = None
    reset_seconds: float | None = None


@dataclass(slots=True)
class CallRecord:
    """Everything measured about one call: written by the exchange and the response parser,
    then each stage adds its derived values; sinks only read it."""

    # Where the call went.
    upstream: str
    protocol: str
    provider_name: str
    method: str
    path: str
    server_address: str
    server_port: int

    # What was asked, and what the stages asked of the call before it was forwarded.
    request: RequestInfo = field(default_factory=RequestInfo)
    options: CallOptions = NO_OPTIONS
    # The decoded request body, kept only when a stage or content capture needs it
    # (`options.keep_request_body`) and it is within MAX_KEPT_BODY_BYTES (forward/facts.py).
    request_body: Any = None
    # A hash of the request (where it went and its canonical body), for repeatability.
    request_fingerprint: bytes | None = None

    # Timings: `start_unix_ns` is wall-clock (for spans); the rest are
    # time.perf_counter() seconds, comparable with each other only.
    start_unix_ns: int = 0
    received: float = 0.0
    upstream_headers: float | None = None
    first_chunk: float | None = None
    end: float = 0.0
    chunk_times: list[float] = field(default_factory=list)
    # The first output delta of each modality (Realtime responses: text, audio).
    first_text_chunk: float | None = None
    first_audio_chunk: float | None = None
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
    # Audio among the input tokens (audio transcription, audio chat), priced apart.
    input_audio_tokens: int | None = None
    # Audio among the output tokens, and among the cached input tokens (Realtime responses).
    output_audio_tokens: int | None = None
    cache_read_audio_tokens: int | None = None
    provider_error_type: str | None = None
    # The processing time the provider reports for the call itself (Bedrock's latencyMs).
    provider_latency_s: float | None = None
    stream_usage_injected: bool = False
    # OpenAI: the service tier that served the call and the backend's fingerprint.
    response_service_tier: str | None = None
    system_fingerprint: str | None = None
    # Quota headroom the provider reported in its response headers, and how many of those
    # headers were malformed (ignored, counted; never an error for the call).
    rate_limits: tuple[RateLimit, ...] = ()
    rate_limit_errors: int = 0

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
    # Whether the call's span is exported (telemetry/sampling.py decides, once, when tracing
    # is on; None: not decided). Its trace id then rides on metrics as an exemplar.
    span_sampled: bool | None = None

    # Token log-probabilities of the first choice, accumulated by the parsers.
    logprob_sum: float = 0.0
    logprob_count: int = 0
    logprob_min: float = 0.0
    # The configured upstream response header carrying a confidence, as the upstream sent it.
    reported_confidence: str | None = None

    # Derived by the stages (enrich/). A whole body's cost and confidence are derived
    # before the app gets its response headers; the stages then find them known.
    cost_usd: float | None = None
    confidence: float | None = None
    confidence_min: float | None = None
    low_confidence: bool = False
    repeat_result: str | None = None
    experiment: str = ""
    variant: str = ""
    # The bounded attribution label (team, feature) decided before forwarding from the
    # configured request header; None when attribution is off.
    attribution: str | None = None
    # The id sent to the app in x-model-sidecar-request-id (feedback).
    request_id: str = ""
    # Shared by a shadow call and its control call (both records carry it).
    pair_id: str = ""
    # Response content, kept only when `options.keep_output` (content capture, the JSON
    # confidence field, repeatability, shadow comparison, the audit sample): parsers join
    # the output text into `output_text` and the first choice's tool calls (name,
    # arguments) into `output_tool_calls`.
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
        if self.outcome == UPSTREAM_ERROR and self.http_status is not None:
            return str(self.http_status)
        return self.outcome


# Who ended a WebSocket session first.
BY_CLIENT = "client"
BY_UPSTREAM = "upstream"
BY_SIDECAR = "sidecar"
# Close codes that end a session normally (RFC 6455 §7.4.1: normal closure, going away, and
# no status code given).
NORMAL_CLOSE_CODES = frozenset((1000, 1001, 1005))


@dataclass(frozen=True, slots=True)
class SessionError:
    """An `error` event of a WebSocket session (bounded type, provider's code)."""

    unix_ns: int
    error_type: str
    code: str | None


@dataclass(slots=True)
class SessionRecord:
    """One WebSocket session (an OpenAI Realtime connection) as a whole. Written by the relay
    and the session's event parser while it runs; each response inside it is a CallRecord of
    its own (operation `chat`), a child of the session's span. Sinks only read it."""

    # Where the session went.
    upstream: str
    protocol: str
    provider_name: str
    path: str
    server_address: str
    server_port: int
    request_model: str | None = None
    request_id: str = ""

    # Timings: `start_unix_ns` wall-clock; the rest time.perf_counter() seconds.
    start_unix_ns: int = 0
    received: float = 0.0
    # When the upstream's 101 reached the app (None: the session never opened).
    opened: float | None = None
    end: float = 0.0

    # How it went: the upstream's handshake status (101, or its refusal), the outcome, the
    # close code of the first Close frame either side sent, and who ended it first.
    http_status: int | None = None
    outcome: str = OK
    close_code: int | None = None
    closed_by: str = ""

    # What the events told.
    response_model: str | None = None
    session_id: str | None = None
    responses: int = 0
    errors: list[SessionError] = field(default_factory=list)
    error_count: int = 0
    # Messages whose type or body could not be read, and the first direction whose bytes
    # stopped being valid WebSocket framing (telemetry only: every byte passed unchanged).
    unparsed_messages: int = 0
    malformed: str = ""
    # Usage summed over the responses that reported it.
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    cache_read_audio_tokens: int = 0
    # Messages and payload bytes in each direction.
    client_messages: int = 0
    upstream_messages: int = 0
    client_bytes: int = 0
    upstream_bytes: int = 0

    # Trace context: the session span's ids (responses are its children).
    trace_id: int | None = None
    span_id: int | None = None
    parent_span_id: int | None = None
    trace_sampled: bool = True
    # Whether the session's span is exported, decided when it opens (tracing on only); its
    # responses' spans follow it.
    span_sampled: bool | None = None

    # Derived when the session ends (telemetry/sessions.py): the summed usage priced.
    cost_usd: float | None = None

    @property
    def duration(self) -> float:
        """Seconds from the upgrade request's arrival to the end of the session."""
        return self.end - self.received

    @property
    def error_type(self) -> str:
        """Low-cardinality error label: empty for a session that ended normally, else the
        close code of an abnormal Close frame (`3xxx` / `4xxx` for the registered and private
        ranges), the upstream's refusal status, or the outcome word."""
        if self.outcome == OK:
            return ""
        code = self.close_code
        if code is not None and code not in NORMAL_CLOSE_CODES:
            return close_code_label(code)
        if self.outcome == UPSTREAM_ERROR and self.http_status not in (None, 101):
            return str(self.http_status)
        return self.outcome


def close_code_label(code: int) -> str:
    """A close code as a bounded label value: RFC 6455's own codes as they are, the
    registered (3000-3999) and private (4000-4999) ranges as `3xxx` / `4xxx`."""
    if 1000 <= code <= 1015:
        return str(code)
    if 3000 <= code <= 4999:
        return f"{code // 1000}xxx"
    return "other"
