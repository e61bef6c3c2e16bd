"""The gRPC half of `otlp_transport`: encoded requests through the SDK's OTLP/gRPC exporter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from sidecar.telemetry.otlp_transport import SdkInternalsChanged, require_callable

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """What the gRPC exporter's hooks are given instead of SDK spans."""

    body: bytes
    span_count: int


class RawTraceServiceStub:
    """TraceService.Export on a channel, taking the request already serialized."""

    def __init__(self, channel: grpc.Channel) -> None:
        # No request serializer: gRPC sends the bytes as they are.
        self.Export = channel.unary_unary(
            EXPORT_METHOD,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class EncodedRequestGrpcExporter(GrpcSpanExporter):
    """The SDK gRPC span exporter, exporting EncodedRequests through a bytes stub."""

    def _initialize_channel_and_stub(self) -> None:
        # Also runs again when the SDK reconnects after UNAVAILABLE: the stub stays raw.
        self._stub = RawTraceServiceStub
        super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]

    def _translate_data(self, data: Any) -> Any:
        return data.body

    def _count_data(self, data: Any) -> int:
        count: int = data.span_count
        return count


class GrpcSender:
    """OTLP/gRPC through the SDK exporter's retry loop, channel, credentials and metadata."""

    def __init__(self, exporter: EncodedRequestGrpcExporter) -> None:
        self.exporter = exporter
        for hook in ("_initialize_channel_and_stub", "_translate_data", "_count_data"):
            require_callable(GrpcSpanExporter, hook)
        self._export = require_callable(exporter, "_export")
        if not isinstance(getattr(exporter, "_client", None), RawTraceServiceStub):
            raise SdkInternalsChanged(
                "OTLP gRPC exporter: the `_stub` attribute no longer makes its client"
            )

    def send(self, request: bytes, span_count: int) -> bool:
        result = self._export(EncodedRequest(request, span_count))
        return result is SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.exporter.shutdown()
