"""The adapters onto SDK internals (telemetry/otlp_transport*.py) and the SDK batch processor.

These fail loudly when an OpenTelemetry upgrade moves what the sidecar relies on.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from sidecar.telemetry.otlp_encoder import OtlpSpanEncoder
from sidecar.telemetry.otlp_settings import ExporterSettings
from sidecar.telemetry.otlp_transport import HttpSender, OtlpSender, SdkInternalsChanged
from sidecar.telemetry.otlp_transport_grpc import GrpcSender, RawTraceServiceStub
from sidecar.telemetry.tracing import CountingBatchSpanProcessor, DeferredSender, EncodedSpan
from tests.helpers.otlp import OtlpReceiver, start_receiver
from tests.helpers.ports import closed_port

ENCODER = OtlpSpanEncoder({"service.name": "transport-test"}, "model_sidecar")


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(request: pytest.FixtureRequest) -> Iterator[OtlpReceiver]:
    running = start_receiver(request.param)
    yield running
    running.stop()


def encoded_span(span_id: int) -> EncodedSpan:
    payload = ENCODER.encode_span(
        trace_id=0xABC,
        span_id=span_id,
        parent_span_id=None,
        name="chat m",
        start_unix_ns=1,
        end_unix_ns=2,
        attributes={"gen_ai.operation.name": "chat"},
    )
    return EncodedSpan(payload)


class RecordingExporter(SpanExporter):
    def __init__(self) -> None:
        self.batches: list[list[object]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(list(spans))
        return SpanExportResult.SUCCESS


def test_the_sdk_batch_processor_hands_encoded_spans_to_the_exporter_untouched() -> None:
    recording = RecordingExporter()
    drops: list[int] = []
    processor = CountingBatchSpanProcessor(
        recording, on_drop=drops.append, schedule_delay_millis=60_000, max_queue_size=3
    )
    spans = [encoded_span(span_id) for span_id in (1, 2, 3, 4)]
    for span in spans:
        processor.queue(span)
    assert processor.force_flush()
    processor.shutdown()
    [batch] = recording.batches
    assert len(batch) == 3 and all(a is b for a, b in zip(batch, spans[:3], strict=True))
    assert drops == [1]  # the fourth found the queue full and was counted


def test_both_senders_deliver_encoded_requests_through_the_sdk_exporters(
    receiver: OtlpReceiver,
) -> None:
    settings = ExporterSettings.from_environ(receiver.environ())
    assert settings is not None
    sender = settings.build_sender()
    request = ENCODER.encode_request([encoded_span(7).payload, encoded_span(8).payload])
    assert sender.send(request, 2)
    sender.shutdown()
    assert [span.span_id for span in receiver.spans] == [7, 8]
    assert receiver.spans[0].resource == {"service.name": "transport-test"}
    assert receiver.received.bodies == [request]  # the bytes arrive as they were encoded


def test_the_grpc_exporter_reconnects_with_the_bytes_stub() -> None:
    settings = ExporterSettings.from_environ(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
        }
    )
    assert settings is not None
    sender = settings.build_sender()
    assert isinstance(sender, GrpcSender)
    first_channel = sender.exporter._channel
    assert not sender.send(ENCODER.encode_request([encoded_span(1).payload]), 1)
    # UNAVAILABLE made the SDK build a new channel and client: still one that takes bytes.
    assert sender.exporter._channel is not first_channel
    assert isinstance(sender.exporter._client, RawTraceServiceStub)
    sender.shutdown()


def test_sdk_internals_that_moved_fail_loudly() -> None:
    with pytest.raises(SdkInternalsChanged, match=r"_client\.export"):
        HttpSender(object())  # type: ignore[arg-type]
    plain = GrpcSpanExporter(endpoint="http://127.0.0.1:9", insecure=True)
    with pytest.raises(SdkInternalsChanged, match="_stub"):
        GrpcSender(plain)  # type: ignore[arg-type]
    plain.shutdown()


def test_the_sidecar_builds_its_sender_on_the_first_export_and_survives_a_broken_sdk(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The OTLP sender is built when the first batch goes out (not at start-up, issue #23);
    one that cannot be built is an error logged once, and its spans are dropped."""
    settings = ExporterSettings.from_environ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert settings is not None
    builds: list[int] = []

    @dataclasses.dataclass(frozen=True)
    class Broken(ExporterSettings):
        def build_sender(self) -> OtlpSender:
            builds.append(1)
            raise SdkInternalsChanged("OpenTelemetry exporter has no callable `_client.export`")

    sender = DeferredSender(Broken(**dataclasses.asdict(settings)))
    assert builds == []  # nothing built yet
    with caplog.at_level(logging.ERROR, "sidecar.telemetry.tracing"):
        assert sender.send(b"", 1) is False
        assert sender.send(b"", 1) is False
    assert builds == [1]
    assert len([r for r in caplog.records if "cannot build" in r.getMessage()]) == 1
    sender.shutdown()
    # Prepared once the sidecar is ready: built on a thread of its own, before any export.
    early = DeferredSender(Broken(**dataclasses.asdict(settings)))
    early.prepare()
    deadline = time.monotonic() + 10
    while len(builds) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert builds == [1, 1]
    assert early.send(b"", 1) is False
    assert builds == [1, 1]  # never built twice
