"""Real OTLP receivers for tests: gRPC and HTTP/protobuf on 127.0.0.1, keeping the traces and
metrics that arrive.

Both serve from their own threads, so a sink that flushes synchronously on the test's
event loop (at shutdown) still reaches them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

SPAN_KIND_CLIENT = 3
STATUS_CODE_UNSET = 0
STATUS_CODE_ERROR = 2


@dataclass
class ReceivedSpan:
    """One span as the receiver got it, with ids as ints and attributes as Python values."""

    name: str
    kind: int
    trace_id: int
    span_id: int
    parent_span_id: int | None
    start_unix_ns: int
    end_unix_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str


def any_value(value: AnyValue) -> Any:
    """The Python value of an OTLP AnyValue."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values)
    return getattr(value, kind)


def key_values(items: Any) -> dict[str, Any]:
    """{key: value} from repeated KeyValue."""
    return {item.key: any_value(item.value) for item in items}


def spans_of(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """Every span in one export request."""
    spans = []
    for resource_spans in request.resource_spans:
        resource = key_values(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        kind=span.kind,
                        trace_id=int.from_bytes(span.trace_id, "big"),
                        span_id=int.from_bytes(span.span_id, "big"),
                        parent_span_id=(
                            int.from_bytes(span.parent_span_id, "big")
                            if span.parent_span_id
                            else None
                        ),
                        start_unix_ns=span.start_time_unix_nano,
                        end_unix_ns=span.end_time_unix_nano,
                        status_code=span.status.code,
                        status_message=span.status.message,
                        attributes=key_values(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                    )
                )
    return spans


@dataclass
class Received:
    """What a receiver collected: raw request bodies, the spans in them, request metadata, and
    the metrics export requests (with their metadata)."""

    bodies: list[bytes] = field(default_factory=list)
    spans: list[ReceivedSpan] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    metrics: list[ExportMetricsServiceRequest] = field(default_factory=list)
    metrics_headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes, headers: dict[str, str]) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            self.bodies.append(body)
            self.headers.append(headers)
            self.spans.extend(spans_of(request))

    def add_metrics(self, body: bytes, headers: dict[str, str]) -> None:
        with self.lock:
            self.metrics.append(ExportMetricsServiceRequest.FromString(body))
            self.metrics_headers.append(headers)


class OtlpReceiver:
    """Base of both receivers: storage, a stall switch and waiting for spans."""

    protocol = ""

    def __init__(self) -> None:
        self.received = Received()
        # While cleared, every export request waits (a stalled collector).
        self.flowing = threading.Event()
        self.flowing.set()
        self.endpoint = ""

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self.received.lock:
            return list(self.received.spans)

    @property
    def raw_bytes(self) -> bytes:
        """Every request body received, concatenated (to search for leaked secrets)."""
        with self.received.lock:
            return b"".join(self.received.bodies)

    def environ(self, **extra: str) -> dict[str, str]:
        """OTEL_* variables that send spans here quickly (100 ms batch delay)."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": self.protocol,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            **extra,
        }

    async def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Poll until at least `count` spans arrived; fail with what did arrive at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans
            if len(spans) >= count:
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} spans within {timeout} s, got {len(spans)}")
            await asyncio.sleep(0.02)

    @property
    def metric_requests(self) -> list[ExportMetricsServiceRequest]:
        with self.received.lock:
            return list(self.received.metrics)

    async def wait_for_metrics(self, count: int = 1, timeout: float = 10.0) -> list[Any]:
        """Poll until at least `count` metrics export requests arrived; return them."""
        deadline = time.monotonic() + timeout
        while True:
            requests = self.metric_requests
            if len(requests) >= count:
                return requests
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} metrics exports within {timeout} s, got {len(requests)}"
                )
            await asyncio.sleep(0.02)

    def _wait_until_flowing(self) -> None:
        self.flowing.wait(30)

    def stop(self) -> None:
        raise NotImplementedError


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: GrpcOtlpReceiver) -> None:
        self.receiver = receiver

    def Export(
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.receiver._wait_until_flowing()
        metadata = {item.key: item.value for item in context.invocation_metadata()}
        self.receiver.received.add(request.SerializeToString(), metadata)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: GrpcOtlpReceiver) -> None:
        self.receiver = receiver

    def Export(
        self, request: ExportMetricsServiceRequest, context: grpc.ServicerContext
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self.receiver._wait_until_flowing()
        metadata = {item.key: item.value for item in context.invocation_metadata()}
        self.receiver.received.add_metrics(request.SerializeToString(), metadata)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class GrpcOtlpReceiver(OtlpReceiver):
    """An OTLP/gRPC TraceService and MetricsService on 127.0.0.1 (a free port)."""

    protocol = "grpc"

    def __init__(self) -> None:
        super().__init__()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self), self._server
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _MetricsService(self), self._server
        )
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.flowing.set()
        self._server.stop(grace=None)


class HttpOtlpReceiver(OtlpReceiver):
    """OTLP/HTTP protobuf endpoints (POST /v1/traces, /v1/metrics) served by aiohttp on its
    own thread."""

    protocol = "http/protobuf"

    def __init__(self) -> None:
        super().__init__()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        host, port = self._runner.addresses[0][:2]
        self.endpoint = f"http://{host}:{port}"

    async def _start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/v1/traces", self._export)
        app.router.add_post("/v1/metrics", self._export_metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    async def _export(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp has already undone any gzip
        await asyncio.get_running_loop().run_in_executor(None, self._wait_until_flowing)
        self.received.add(body, dict(request.headers))
        response = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=response, content_type="application/x-protobuf")

    async def _export_metrics(self, request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.get_running_loop().run_in_executor(None, self._wait_until_flowing)
        self.received.add_metrics(body, dict(request.headers))
        response = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        return web.Response(body=response, content_type="application/x-protobuf")

    def stop(self) -> None:
        self.flowing.set()
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def start_receiver(protocol: str) -> OtlpReceiver:
    """A running receiver for `grpc` or `http/protobuf`; call `stop()` when done."""
    if protocol == "grpc":
        return GrpcOtlpReceiver()
    return HttpOtlpReceiver()
