"""The Realtime event parser against raw frames of the API's event schema: when each response
starts and first answers, its usage, its outcome, the session's errors and close — and that
only the few events it needs are ever decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from sidecar.protocols.openai_realtime import RealtimeSession, event_type, session_model
from sidecar.protocols.websocket_frames import CLOSE, TEXT, FrameScanner
from sidecar.record import CallRecord, SessionRecord
from tests.helpers.realtime import frame

MASK = b"\x11\x22\x33\x44"
USAGE = {
    "total_tokens": 260,
    "input_tokens": 200,
    "output_tokens": 60,
    "input_token_details": {
        "text_tokens": 120,
        "audio_tokens": 80,
        "image_tokens": 0,
        "cached_tokens": 64,
        "cached_tokens_details": {"text_tokens": 32, "audio_tokens": 32, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 12, "audio_tokens": 48},
}


@dataclass
class Events:
    started: list[CallRecord] = field(default_factory=list)
    finished: list[CallRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def response_started(self, record: CallRecord) -> None:
        self.started.append(record)

    def response_finished(self, record: CallRecord) -> None:
        self.finished.append(record)

    def error(self, session: SessionRecord, error_type: str) -> None:
        self.errors.append(error_type)


class Session:
    """A RealtimeSession fed frame by frame, each at a given time."""

    def __init__(self, deployments: dict[str, str] | None = None) -> None:
        self.record = SessionRecord(
            upstream="openai",
            protocol="openai",
            provider_name="openai",
            path="/v1/realtime",
            server_address="api.openai.com",
            server_port=443,
            request_model="gpt-realtime",
            request_id="req-1",
            start_unix_ns=1_000_000_000_000,
            received=10.0,
            trace_id=7,
            span_id=8,
        )
        self.events = Events()
        ids = iter(range(100, 200))
        self.parsed = RealtimeSession(
            self.record, self.events, lambda: next(ids), deployments or {}
        )
        self.client = FrameScanner(self.parsed.client)
        self.server = FrameScanner(self.parsed.server)

    def app(self, event: dict[str, Any], now: float) -> None:
        self.client.feed(frame(TEXT, orjson.dumps(event), mask=MASK), now)

    def api(self, event: dict[str, Any] | bytes, now: float) -> None:
        body = event if isinstance(event, bytes) else orjson.dumps(event)
        self.server.feed(frame(TEXT, body), now)


def created(response_id: str, **response: Any) -> dict[str, Any]:
    return {
        "type": "response.created",
        "event_id": "e",
        "response": {"id": response_id, **response},
    }


def delta(kind: str, response_id: str, payload: str = "hi") -> dict[str, Any]:
    return {"type": kind, "event_id": "e", "response_id": response_id, "delta": payload}


def done(response_id: str, status: str = "completed", **extra: Any) -> dict[str, Any]:
    response = {"id": response_id, "status": status, "usage": USAGE, **extra}
    return {"type": "response.done", "event_id": "e", "response": response}


def test_a_response_from_response_create_to_response_done() -> None:
    session = Session()
    session.api({"type": "session.created", "session": {"id": "sess_1", "model": "gpt-rt-1"}}, 10.1)
    session.app({"type": "response.create"}, 11.0)
    session.api(created("resp_1", output_modalities=["audio"], conversation_id="conv_1"), 11.2)
    session.api(delta("response.output_audio_transcript.delta", "resp_1"), 11.3)
    session.api(delta("response.output_audio.delta", "resp_1", "QUJD" * 10_000), 11.4)
    session.api(delta("response.output_audio.delta", "resp_1"), 11.5)
    session.api(done("resp_1"), 11.9)
    (record,) = session.events.finished
    assert session.events.started == [record]
    assert (record.received, record.first_chunk, record.end) == (11.0, 11.3, 11.9)
    assert (record.first_audio_chunk, record.first_text_chunk) == (11.4, None)
    assert record.chunk_times == [11.3, 11.4, 11.5]
    assert record.start_unix_ns == 1_000_000_000_000 + 1_000_000_000
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens) == (200, 60, 64)
    assert (record.input_audio_tokens, record.output_audio_tokens) == (80, 48)
    assert record.cache_read_audio_tokens == 32
    assert (record.response_id, record.response_model) == ("resp_1", "gpt-rt-1")
    assert record.request.operation == "chat" and record.request.stream
    assert record.request.output_type == "speech"
    assert record.request.conversation_id == "conv_1"
    assert (record.trace_id, record.parent_span_id, record.span_id) == (7, 8, 100)
    assert (record.outcome, record.finish_reasons) == ("ok", ["completed"])
    assert record.upstream_wait == pytest.approx(record.duration)
    summed = session.record
    assert (summed.responses, summed.input_tokens, summed.output_audio_tokens) == (1, 200, 48)
    assert (summed.session_id, summed.response_model) == ("sess_1", "gpt-rt-1")
    assert (summed.client_messages, summed.upstream_messages) == (1, 6)


def test_turn_detection_starts_the_clock_at_the_end_of_speech() -> None:
    session = Session()
    session.api({"type": "input_audio_buffer.speech_started", "event_id": "e"}, 20.0)
    session.api({"type": "input_audio_buffer.speech_stopped", "event_id": "e"}, 21.0)
    session.api({"type": "input_audio_buffer.committed", "event_id": "e"}, 21.1)
    session.api(created("resp_2"), 21.3)
    session.api(delta("response.output_text.delta", "resp_2"), 21.6)
    session.api(done("resp_2"), 22.0)
    (record,) = session.events.finished
    assert (record.received, record.first_text_chunk) == (21.0, 21.6)


def test_responses_are_matched_to_their_creates_in_order() -> None:
    session = Session()
    session.app({"type": "response.create"}, 1.0)
    session.app({"type": "response.create", "response": {"conversation": "none"}}, 2.0)
    session.api(created("a"), 2.1)
    session.api(created("b"), 2.2)
    session.api(delta("response.output_text.delta", "b"), 2.5)
    session.api(delta("response.output_text.delta", "a"), 2.7)
    session.api(done("b"), 3.0)
    session.api(done("a", "cancelled", status_details={"reason": "turn_detected"}), 3.1)
    b, a = session.events.finished
    assert (a.received, a.first_chunk, a.outcome) == (1.0, 2.7, "client_cancelled")
    assert a.finish_reasons == ["turn_detected"]
    assert (b.received, b.first_chunk, b.outcome) == (2.0, 2.5, "ok")


def test_a_failed_response_and_error_events() -> None:
    session = Session()
    session.app({"type": "response.create"}, 1.0)
    session.api(created("r"), 1.1)
    failed = {"type": "failed", "error": {"type": "server_error", "code": "overloaded"}}
    session.api(done("r", "failed", status_details=failed), 1.5)
    session.api({"type": "error", "error": {"type": "invalid_request_error", "code": "x"}}, 2.0)
    session.api({"type": "error", "error": {"type": "made_up_error", "code": "y" * 500}}, 2.5)
    (record,) = session.events.finished
    assert (record.outcome, record.error_type) == ("upstream_error", "upstream_error")
    assert record.provider_error_type == "server_error"
    assert session.events.errors == ["invalid_request_error", "other"]
    first, second = session.record.errors
    assert (first.error_type, first.code) == ("invalid_request_error", "x")
    assert first.unix_ns == 1_000_000_000_000 - 8_000_000_000
    assert second.code == "y" * 64
    assert session.record.error_count == 2


def test_only_the_needed_events_are_decoded() -> None:
    session = Session()
    direction = session.parsed.server
    assert direction.keep(TEXT, b'{"type":"response.done","event_id":"e"')
    assert not direction.keep(TEXT, b'{"type":"response.output_audio.delta","delta":"AAAA')
    assert not session.parsed.client.keep(TEXT, b'{"type":"response.create"}')
    # A needed event that is not JSON is counted, never a crash.
    session.api(b'{"type":"response.done","response": {broken', 1.0)
    assert session.record.unparsed_messages == 1
    assert not session.events.finished


def test_a_type_after_a_long_payload_is_found_in_the_tail() -> None:
    session = Session()
    session.app({"type": "response.create"}, 1.0)
    session.api(created("r"), 1.1)
    late = b'{"delta":"' + b"A" * 5000 + b'","response_id":"r","type":"response.output_text.delta"}'
    session.api(late, 1.4)
    (record,) = session.events.started
    assert record.first_text_chunk == 1.4
    assert event_type(b'{"event_id":"e","type": "error"', b"") == "error"


def test_close_frames_and_the_end_of_the_session() -> None:
    session = Session(deployments={"gpt-realtime": "gpt-realtime-2025-08-28"})
    session.app({"type": "response.create"}, 1.0)
    session.api(created("r"), 1.1)
    session.api(delta("response.output_text.delta", "r"), 1.2)
    session.client.feed(frame(CLOSE, (4001).to_bytes(2, "big") + b"bye", mask=MASK), 1.5)
    session.server.feed(frame(CLOSE, (1000).to_bytes(2, "big")), 1.6)
    assert (session.record.close_code, session.record.closed_by) == (4001, "client")
    session.parsed.finish(1.7, "client_cancelled")
    (record,) = session.events.finished
    assert (record.outcome, record.end, record.input_tokens) == ("client_cancelled", 1.7, None)
    # No session.created named a model: the deployment map does.
    assert record.response_model == "gpt-realtime-2025-08-28"


def test_a_close_frame_without_a_code() -> None:
    session = Session()
    session.server.feed(frame(CLOSE, b""), 1.0)
    assert (session.record.close_code, session.record.closed_by) == (1005, "upstream")


@pytest.mark.parametrize(
    ("query", "model"),
    [
        ("model=gpt-realtime", "gpt-realtime"),
        ("api-version=2025-04-01-preview&deployment=realtime-prod", "realtime-prod"),
        ("model=&deployment=d", "d"),
        ("", None),
    ],
)
def test_the_session_model_from_the_query(query: str, model: str | None) -> None:
    assert session_model(query) == model


def test_responses_without_ids_are_each_finished_once() -> None:
    session = Session()
    session.app({"type": "response.create"}, 1.0)
    session.api({"type": "response.created", "response": {}}, 1.1)
    session.api({"type": "response.output_text.delta", "delta": "x"}, 1.2)
    session.api({"type": "response.done", "response": {"status": "completed"}}, 1.3)
    session.api({"type": "response.created", "response": {}}, 2.0)
    session.parsed.finish(2.5, "stream_interrupted")
    first, second = session.events.finished
    assert (first.first_chunk, first.end, first.outcome) == (1.2, 1.3, "ok")
    assert (second.end, second.outcome) == (2.5, "stream_interrupted")
    assert len(session.events.started) == 2
