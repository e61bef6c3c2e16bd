"""OpenAI's Realtime API (also Azure OpenAI's) as its events pass through a WebSocket session.

Each direction's frames are followed by a `FrameScanner` (websocket_frames.py); this module
reads the messages it reports. A message's type is found by a cheap scan of its first (or
last) bytes; only the few server events whose fields matter — `session.created`/`updated`,
`response.created`, `response.done`, `error` — are decoded as JSON. Deltas count by their type
alone (the time of the first text or audio delta), and client events only by theirs
(`response.create` starts a response's clock): audio is never decoded, copied or held.

Every response — from `response.create`, or the end of the user's speech when the server's
turn detection starts it, to `response.done` — becomes a CallRecord of operation `chat`
(a streamed model turn; the GenAI conventions have no realtime operation yet), the child of
the session's span. The session itself is a SessionRecord (record.py).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qs

import orjson

from sidecar.protocols.jsonfields import as_int, as_str, dig
from sidecar.protocols.websocket_frames import CLOSE, TEXT
from sidecar.record import (
    BY_CLIENT,
    BY_UPSTREAM,
    CLIENT_CANCELLED,
    OK,
    UPSTREAM_ERROR,
    CallRecord,
    RequestInfo,
    SessionError,
    SessionRecord,
)

# The top-level `"type": "..."` of an event, and the response a delta belongs to.
_TYPE = re.compile(rb'"type"\s*:\s*"([A-Za-z0-9_.]{1,100})"')
_RESPONSE_ID = re.compile(rb'"response_id"\s*:\s*"([^"\\]{1,200})"')

# Server events decoded whole (they are small: no audio in them).
DECODED = frozenset(
    ("session.created", "session.updated", "response.created", "response.done", "error")
)
# Output deltas, by modality. The beta names (`response.text.delta`, ...) are still what
# Azure OpenAI's preview API versions send.
TEXT_DELTAS = frozenset(("response.output_text.delta", "response.text.delta"))
AUDIO_DELTAS = frozenset(("response.output_audio.delta", "response.audio.delta"))
OTHER_DELTAS = frozenset(
    (
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
        "response.function_call_arguments.delta",
        "response.mcp_call_arguments.delta",
    )
)
# The end of the user's input, when the server's turn detection will start a response.
INPUT_END = frozenset(("input_audio_buffer.speech_stopped", "input_audio_buffer.committed"))
CLIENT_INPUT_END = "input_audio_buffer.commit"
CLIENT_RESPONSE_CREATE = "response.create"

# `error.type` values of OpenAI's API; anything else is `other` (a bounded label).
ERROR_TYPES = frozenset(
    (
        "invalid_request_error",
        "server_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "conflict_error",
        "tokens_exceeded_error",
    )
)
# Response statuses that end a response well, and the outcome of the others.
STATUS_OUTCOMES = {
    "completed": OK,
    "incomplete": OK,
    "cancelled": CLIENT_CANCELLED,
    "failed": UPSTREAM_ERROR,
}
# Bounds on what one session remembers.
MAX_PENDING_STARTS = 64
MAX_OPEN_RESPONSES = 64
MAX_KEPT_ERRORS = 32
MAX_CODE_CHARS = 64


def session_model(query: str) -> str | None:
    """The model (OpenAI, Azure `v1`) or deployment (Azure's preview API) a session asks for,
    from the upgrade request's query."""
    params = parse_qs(query, keep_blank_values=False)
    for key in ("model", "deployment"):
        values = params.get(key)
        if values and values[0]:
            return values[0]
    return None


def event_type(head: bytes, tail: bytes) -> str | None:
    """The type of an event from its first bytes (or, when it is not there, its last)."""
    found = _TYPE.search(head) or _TYPE.search(tail)
    return found.group(1).decode("ascii") if found else None


def error_type_label(value: Any) -> str:
    """An `error` event's type as a bounded label value."""
    return value if isinstance(value, str) and value in ERROR_TYPES else "other"


class SessionEvents(Protocol):
    """Where a session's findings go as they happen."""

    def response_started(self, record: CallRecord) -> None:
        """A response began (its record is open)."""

    def response_finished(self, record: CallRecord) -> None:
        """A response ended (its record is final)."""

    def error(self, session: SessionRecord, error_type: str) -> None:
        """The upstream sent an `error` event."""


class RealtimeSession:
    """Reads one Realtime session's events and writes its SessionRecord and response records.

    `client` and `server` are the MessageSinks of the two directions' FrameScanners.
    """

    def __init__(
        self,
        session: SessionRecord,
        events: SessionEvents,
        new_span_id: Callable[[], int],
        deployments: Mapping[str, str],
    ) -> None:
        self.session = session
        self._events = events
        self._new_span_id = new_span_id
        self._deployments = deployments
        # When each `response.create` the server has not answered yet was sent.
        self._pending: deque[float] = deque(maxlen=MAX_PENDING_STARTS)
        # The end of the user's input that no response has started from yet.
        self._input_end: float | None = None
        self._open: dict[str, CallRecord] = {}
        self._latest: CallRecord | None = None
        self.client = _Direction(self, from_client=True)
        self.server = _Direction(self, from_client=False)

    # What the directions report.

    def client_message(self, kind: str | None, now: float) -> None:
        if kind == CLIENT_RESPONSE_CREATE:
            self._pending.append(now)
        elif kind == CLIENT_INPUT_END:
            self._input_end = now

    def server_message(
        self, kind: str | None, head: bytes, tail: bytes, body: bytes | None, now: float
    ) -> None:
        if kind in DECODED:
            event = _decode(body)
            if event is None or event.get("type") != kind:
                self.session.unparsed_messages += 1
                return
            self._decoded(kind, event, now)
        elif kind in TEXT_DELTAS:
            self._delta(head, tail, now, text=True)
        elif kind in AUDIO_DELTAS:
            self._delta(head, tail, now, audio=True)
        elif kind in OTHER_DELTAS:
            self._delta(head, tail, now)
        elif kind in INPUT_END:
            if self._input_end is None:
                self._input_end = now
        elif kind is None:
            self.session.unparsed_messages += 1

    def close_frame(self, payload: bytes, from_client: bool) -> None:
        session = self.session
        if session.close_code is None:
            session.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            session.closed_by = BY_CLIENT if from_client else BY_UPSTREAM

    # Events.

    def _decoded(self, kind: str, event: dict[str, Any], now: float) -> None:
        session = self.session
        if kind in ("session.created", "session.updated"):
            details = event.get("session")
            if isinstance(details, dict):
                session.response_model = as_str(details.get("model")) or session.response_model
                session.session_id = as_str(details.get("id")) or session.session_id
        elif kind == "response.created":
            response = event.get("response")
            if isinstance(response, dict):
                self._start(response, now)
        elif kind == "response.done":
            response = event.get("response")
            if isinstance(response, dict):
                self._done(response, now)
        else:
            self._error(event.get("error"), now)

    def _start(self, response: dict[str, Any], now: float) -> CallRecord:
        """A response's record, opened when the server announces it: its clock started at the
        oldest unanswered `response.create`, else at the end of the user's input."""
        if self._pending:
            started = self._pending.popleft()
        elif self._input_end is not None:
            started = self._input_end
        else:
            started = now
        self._input_end = None
        session = self.session
        modalities = response.get("output_modalities") or response.get("modalities")
        output_type = None
        if isinstance(modalities, list):
            output_type = "speech" if "audio" in modalities else "text"
        info = RequestInfo(
            operation="chat",
            request_model=session.request_model,
            stream=True,
            output_type=output_type,
            conversation_id=as_str(response.get("conversation_id")) or session.session_id,
        )
        record = CallRecord(
            upstream=session.upstream,
            protocol=session.protocol,
            provider_name=session.provider_name,
            method="GET",
            path=session.path,
            server_address=session.server_address,
            server_port=session.server_port,
            request=info,
            start_unix_ns=session.start_unix_ns + int((started - session.received) * 1e9),
            received=started,
            request_id=session.request_id,
        )
        record.response_id = as_str(response.get("id"))
        if session.trace_id:
            record.trace_id = session.trace_id
            record.span_id = self._new_span_id()
            record.parent_span_id = session.span_id
            # The session's span decision, so that its children follow it.
            sampled = session.span_sampled
            record.trace_sampled = session.trace_sampled if sampled is None else sampled
        if len(self._open) >= MAX_OPEN_RESPONSES:
            oldest = next(iter(self._open))
            self._end(self._open.pop(oldest), now, CLIENT_CANCELLED)
        session.responses += 1
        self._open[record.response_id or f"#{session.responses}"] = record
        self._latest = record
        self._events.response_started(record)
        return record

    def _delta(
        self, head: bytes, tail: bytes, now: float, *, text: bool = False, audio: bool = False
    ) -> None:
        found = _RESPONSE_ID.search(head) or _RESPONSE_ID.search(tail)
        record = self._open.get(found.group(1).decode("latin-1")) if found else None
        if record is None:
            record = self._latest
            if record is None:
                return
        if record.first_chunk is None:
            record.first_chunk = now
        record.chunk_times.append(now)
        if text and record.first_text_chunk is None:
            record.first_text_chunk = now
        if audio and record.first_audio_chunk is None:
            record.first_audio_chunk = now

    def _done(self, response: dict[str, Any], now: float) -> None:
        response_id = as_str(response.get("id"))
        record = self._open.get(response_id) if response_id is not None else self._latest
        if record is None:  # its `response.created` was not seen
            record = self._start(response, now)
        self._forget(record)
        status = as_str(response.get("status"))
        details = response.get("status_details")
        reason = as_str(details.get("reason")) if isinstance(details, dict) else None
        if status is not None:
            record.finish_reasons = [reason or status]
        if status == "failed":
            error = dig(details, "error")
            if isinstance(error, dict):
                record.provider_error_type = as_str(error.get("type")) or as_str(error.get("code"))
        self._usage(record, response.get("usage"))
        self._end(record, now, STATUS_OUTCOMES.get(status or "", OK))

    def _usage(self, record: CallRecord, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        session = self.session
        record.input_tokens = as_int(usage.get("input_tokens"))
        record.output_tokens = as_int(usage.get("output_tokens"))
        record.cache_read_tokens = as_int(dig(usage, "input_token_details", "cached_tokens"))
        record.input_audio_tokens = as_int(dig(usage, "input_token_details", "audio_tokens"))
        record.cache_read_audio_tokens = as_int(
            dig(usage, "input_token_details", "cached_tokens_details", "audio_tokens")
        )
        record.output_audio_tokens = as_int(dig(usage, "output_token_details", "audio_tokens"))
        session.input_tokens += record.input_tokens or 0
        session.output_tokens += record.output_tokens or 0
        session.cache_read_tokens += record.cache_read_tokens or 0
        session.input_audio_tokens += record.input_audio_tokens or 0
        session.output_audio_tokens += record.output_audio_tokens or 0
        session.cache_read_audio_tokens += record.cache_read_audio_tokens or 0

    def _end(self, record: CallRecord, now: float, outcome: str) -> None:
        record.outcome = outcome
        record.end = now
        # Every moment of a response is the upstream's: the relay adds no wait of its own.
        record.upstream_wait = max(0.0, now - record.received)
        session = self.session
        record.response_model = session.response_model or self._deployments.get(
            session.request_model or ""
        )
        if self._latest is record:
            self._latest = None
        self._events.response_finished(record)

    def _error(self, error: Any, now: float) -> None:
        session = self.session
        kind = error_type_label(error.get("type") if isinstance(error, dict) else None)
        code = as_str(error.get("code")) if isinstance(error, dict) else None
        session.error_count += 1
        if len(session.errors) < MAX_KEPT_ERRORS:
            unix_ns = session.start_unix_ns + int((now - session.received) * 1e9)
            session.errors.append(
                SessionError(unix_ns, kind, code[:MAX_CODE_CHARS] if code else None)
            )
        self._events.error(session, kind)

    def _forget(self, record: CallRecord) -> None:
        for key, open_record in self._open.items():
            if open_record is record:
                del self._open[key]
                return

    def finish(self, now: float, outcome: str) -> None:
        """The session ended: responses still open end with `outcome`."""
        for record in list(self._open.values()):
            self._end(record, now, outcome)
        self._open.clear()


class _Direction:
    """The MessageSink of one direction: counts messages, finds their types, keeps only the
    server events that are decoded."""

    __slots__ = ("_from_client", "_session")

    def __init__(self, session: RealtimeSession, *, from_client: bool) -> None:
        self._session = session
        self._from_client = from_client

    def keep(self, opcode: int, head: bytes) -> bool:
        if self._from_client or opcode != TEXT:
            return False
        return event_type(head, b"") in DECODED

    def message(
        self, opcode: int, head: bytes, tail: bytes, body: bytes | None, size: int, now: float
    ) -> None:
        realtime = self._session
        session = realtime.session
        kind = event_type(head, tail) if opcode == TEXT else None
        if self._from_client:
            session.client_messages += 1
            session.client_bytes += size
            realtime.client_message(kind, now)
        else:
            session.upstream_messages += 1
            session.upstream_bytes += size
            if opcode == TEXT:
                realtime.server_message(kind, head, tail, body, now)

    def control(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == CLOSE:
            self._session.close_frame(payload, self._from_client)

    def malformed(self, why: str) -> None:
        session = self._session.session
        side = "client" if self._from_client else "upstream"
        if not session.malformed:
            session.malformed = f"{side}: {why}"


def _decode(body: bytes | None) -> dict[str, Any] | None:
    if body is None:
        return None
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None
