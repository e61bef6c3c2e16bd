"""The hand-written OTLP encoder against the SDK's: same spans, decoded with opentelemetry-proto.

The reference is what the SDK itself produces for the call: a TracerProvider span with
the same ids, parent, attributes, events and status, encoded by the SDK's `encode_spans`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from sidecar.config.models import TelemetryConfig
from sidecar.record import CONNECTION_ERROR, TIMEOUT, UPSTREAM_ERROR, CallRecord, RetryAttempt
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.otlp_encoder import OtlpSpanEncoder, length_delimited
from sidecar.telemetry.otlp_settings import resource_from_environ
from sidecar.telemetry.span_attributes import (
    content_attributes,
    is_error,
    span_attributes,
    span_events,
    span_name,
)
from sidecar.telemetry.tracing import SCOPE_NAME, TracingSink, build_tracing_sink
from tests.helpers.records import APP_SPAN_ID, START_NS, make_record

ENVIRON = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",  # never reached: nothing is sent
    "OTEL_SERVICE_NAME": "checkout",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=pay%20ments",
}


class FixedIds(IdGenerator):
    """The ids the reference span must have."""

    def __init__(self, trace_id: int, span_id: int) -> None:
        self.trace_id, self.span_id = trace_id, span_id

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


def sdk_span(
    record: CallRecord,
    resource: Resource,
    *,
    trace_id: int,
    span_id: int,
    capture_chars: int = 0,
    attributes: Mapping[str, Any] | None = None,
) -> ReadableSpan:
    """The call's span as the OpenTelemetry SDK builds it (what the sink did before)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=resource, id_generator=FixedIds(trace_id, span_id), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    if attributes is None:
        attributes = span_attributes(record)
        if capture_chars:
            attributes.update(content_attributes(record, capture_chars))
    context = None
    if record.trace_id is not None and record.parent_span_id is not None:
        parent = SpanContext(
            record.trace_id,
            record.parent_span_id,
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        context = trace.set_span_in_context(NonRecordingSpan(parent))
    duration_ns = int(record.duration * 1e9)
    span = provider.get_tracer(SCOPE_NAME).start_span(
        span_name(record),
        context=context,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=record.start_unix_ns,
    )
    for name, event_attributes, timestamp in span_events(record):
        span.add_event(name, event_attributes, timestamp=timestamp)
    if is_error(record):
        span.set_status(Status(StatusCode.ERROR, record.error_type))
    span.end(end_time=record.start_unix_ns + duration_ns)
    provider.shutdown()
    [finished] = exporter.get_finished_spans()
    return finished


def make_sink(environ: Mapping[str, str] = ENVIRON, max_chars: int = 16384) -> TracingSink:
    sink = build_tracing_sink(
        TelemetryConfig(capture_content_max_chars=max_chars), environ, TelemetryDrops()
    )
    assert sink is not None
    return sink


def our_request(sink: TracingSink, records: Sequence[CallRecord]) -> ExportTraceServiceRequest:
    """What the sink would send for these records, decoded."""
    payloads = []
    for record in records:
        span = sink.encode(record)
        assert span is not None
        payloads.append(span.payload)
    return ExportTraceServiceRequest.FromString(sink.encoder.encode_request(payloads))


def reference_request(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The SDK's encoding, through bytes like ours (so both are compared as received)."""
    return ExportTraceServiceRequest.FromString(encode_spans(spans).SerializeToString())


def retried(record: CallRecord) -> CallRecord:
    record.sidecar_retries = 2
    record.retry_attempts = [
        RetryAttempt(attempt=2, reason="503", delay_s=0.25, start_unix_ns=START_NS + 10_000),
        RetryAttempt(
            attempt=3, reason="connection_error", delay_s=0.5, start_unix_ns=START_NS + 20_000
        ),
    ]
    return record


def odd(record: CallRecord) -> CallRecord:
    record.request.seed = -5  # negative int64: a ten-byte varint
    record.request.temperature = 1  # an int where a float is usual
    record.request.request_model = "模型-" + "x" * 200
    return record


RECORDS = {
    "full": lambda: make_record(),
    "upstream error": lambda: make_record(outcome=UPSTREAM_ERROR, http_status=503),
    "connection error": lambda: make_record(
        outcome=CONNECTION_ERROR, http_status=None, response_model=None
    ),
    "timeout, retried": lambda: retried(make_record(outcome=TIMEOUT, http_status=None)),
    "root span": lambda: make_record(parent_span_id=None, trace_id=0xABC, span_id=0xDEF),
    "odd values": lambda: odd(
        make_record(
            response_id="ü" * 300,  # multi-byte varint lengths
            output_tokens=2**40,
            low_confidence=True,
            finish_reasons=[],
            experiment="",
        )
    ),
}


@pytest.mark.parametrize("case", list(RECORDS))
def test_each_span_decodes_to_what_the_sdk_encoder_produces(case: str) -> None:
    sink = make_sink()
    record = RECORDS[case]()
    assert record.trace_id is not None and record.span_id is not None
    resource = resource_from_environ(ENVIRON)
    expected = sdk_span(record, resource, trace_id=record.trace_id, span_id=record.span_id)

    ours = our_request(sink, [record])
    assert ours == reference_request([expected])
    # Not vacuous: the comparison sees every part of the span.
    [span] = ours.resource_spans[0].scope_spans[0].spans
    assert span.name == span_name(record) and len(span.attributes) >= 20
    assert len(span.events) == len(record.retry_attempts)
    assert span.status.code == (2 if is_error(record) else 0)


def test_a_batch_with_captured_content_decodes_to_the_sdk_encoding() -> None:
    environ = {**ENVIRON, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    sink = make_sink(environ, max_chars=64)
    records = [make_record(span_id=span_id) for span_id in (1, 2, 3)]
    records[1].output_text = "long answer " * 50  # truncated to the budget
    resource = resource_from_environ(environ)
    expected = [
        sdk_span(r, resource, trace_id=r.trace_id or 0, span_id=r.span_id or 0, capture_chars=64)
        for r in records
    ]

    ours = our_request(sink, records)
    assert ours == reference_request(expected)
    assert [span.span_id for span in ours.resource_spans[0].scope_spans[0].spans] == [
        (1).to_bytes(8, "big"),
        (2).to_bytes(8, "big"),
        (3).to_bytes(8, "big"),
    ]
    attributes = {kv.key for kv in ours.resource_spans[0].scope_spans[0].spans[1].attributes}
    assert "gen_ai.output.messages" in attributes


def test_ids_the_proxy_never_chose_are_made_up_like_the_sdk_does() -> None:
    sink = make_sink()
    record = make_record(trace_id=None, span_id=None, parent_span_id=APP_SPAN_ID)
    ours = our_request(sink, [record])
    [span] = ours.resource_spans[0].scope_spans[0].spans
    trace_id, span_id = int.from_bytes(span.trace_id, "big"), int.from_bytes(span.span_id, "big")
    assert trace_id != 0 and span_id != 0
    assert span.parent_span_id == b""  # no trace id: the app's span cannot be the parent
    expected = sdk_span(record, resource_from_environ(ENVIRON), trace_id=trace_id, span_id=span_id)
    assert ours == reference_request([expected])


SCALARS = st.one_of(
    st.text(max_size=40),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(st.text(max_size=10), max_size=4).map(tuple),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=4).map(tuple),
    st.lists(st.floats(allow_nan=False), max_size=4).map(tuple),
    st.lists(st.booleans(), max_size=4).map(tuple),
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=30), VALUES, max_size=12))
def test_any_attribute_values_encode_like_the_sdk(attributes: dict[str, Any]) -> None:
    resource = resource_from_environ(ENVIRON)
    encoder = OtlpSpanEncoder(resource.attributes, SCOPE_NAME)
    record = make_record()
    assert record.trace_id is not None
    expected = sdk_span(
        record, resource, trace_id=record.trace_id, span_id=2, attributes=attributes
    )
    # Twice: the second time string and integer fields come from the encoder's cache.
    for _ in range(2):
        payload = encoder.encode_span(
            trace_id=record.trace_id,
            span_id=2,
            parent_span_id=APP_SPAN_ID,
            name=span_name(record),
            start_unix_ns=record.start_unix_ns,
            end_unix_ns=record.start_unix_ns + 1_500_000_000,
            attributes=attributes,
        )
        ours = ExportTraceServiceRequest.FromString(encoder.encode_request([payload]))
        assert ours == reference_request([expected])


def resource_attributes(fields: bytes) -> Any:
    """Encoded `Resource.attributes` fields, decoded (as the repeated KeyValue)."""
    resource_spans = length_delimited(b"\x0a", length_delimited(b"\x0a", fields))
    request = ExportTraceServiceRequest.FromString(resource_spans)
    return request.resource_spans[0].resource.attributes


def test_values_otlp_cannot_carry_are_left_out_like_the_sdk_does() -> None:
    encoder = OtlpSpanEncoder({}, SCOPE_NAME)
    fields = encoder.attributes(b"\x0a", {"big": 2**64, "ok": 1, "object": object()})
    assert [kv.key for kv in resource_attributes(fields)] == ["ok"]


def test_high_cardinality_values_are_not_remembered_forever() -> None:
    encoder = OtlpSpanEncoder({}, SCOPE_NAME)
    for index in range(2000):
        encoder.attributes(b"\x4a", {"gen_ai.response.id": f"chatcmpl-{index}", "op": "chat"})
        encoder.attributes(b"\x4a", {"gen_ai.input.messages": "x" * 1000})
    caches = encoder._cached_fields[b"\x4a"]
    assert caches["gen_ai.response.id"] is None  # marked high-cardinality, nothing kept
    assert "gen_ai.input.messages" not in caches  # content is never remembered
    assert caches["op"] == {"chat": encoder.attributes(b"\x4a", {"op": "chat"})}


def test_remembered_fields_never_mix_up_equal_values_of_other_types() -> None:
    encoder = OtlpSpanEncoder({}, SCOPE_NAME)
    values: list[Any] = [1, True, 1.0, "1", 0, False, 0.0]
    kinds = [
        resource_attributes(encoder.attributes(b"\x0a", {"k": value}))[0].value.WhichOneof("value")
        for value in values * 2
    ]
    expected = ["int_value", "bool_value", "double_value", "string_value"]
    assert kinds == (expected + expected[:3]) * 2
