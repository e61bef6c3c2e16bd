"""`OTEL_TRACES_EXPORTER=console`: spans on stdout, one JSON object per line, for looking at
spans on a laptop without a collector.

It takes the same encoded OTLP requests as the OTLP senders (so what it prints is exactly what
a collector would get), decodes them with opentelemetry-proto and writes each span with its
attributes (the GenAI semantic-convention names), events, status and resource. Logs stay on
stderr, so `model-sidecar serve > spans.jsonl` keeps the spans apart.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


class ConsoleSender:
    """An OtlpSender that prints each span of a request as one JSON line."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, request: bytes, span_count: int) -> bool:
        message = ExportTraceServiceRequest.FromString(request)
        lines = []
        for resource_spans in message.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope.name
                for span in scope_spans.spans:
                    lines.append(orjson.dumps(span_json(span, resource, scope)).decode())
        out = self._out or sys.stdout
        with self._lock:
            out.write("".join(line + "\n" for line in lines))
            out.flush()
        return True

    def shutdown(self) -> None:
        return None


class FanoutSender:
    """Sends every request to several senders (`OTEL_TRACES_EXPORTER=otlp,console`); succeeds
    when they all do."""

    def __init__(self, senders: list[Any]) -> None:
        self.senders = senders

    def send(self, request: bytes, span_count: int) -> bool:
        results = [sender.send(request, span_count) for sender in self.senders]
        return all(results)

    def shutdown(self) -> None:
        for sender in self.senders:
            sender.shutdown()


def span_json(span: Span, resource: dict[str, Any], scope: str) -> dict[str, Any]:
    """One span as a JSON-ready dict: ids in hex, times in ISO 8601 UTC, attributes by name."""
    entry: dict[str, Any] = {
        "name": span.name,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex() or None,
        "kind": Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        "start_time": _time(span.start_time_unix_nano),
        "end_time": _time(span.end_time_unix_nano),
        "duration_ms": round((span.end_time_unix_nano - span.start_time_unix_nano) / 1e6, 3),
        "status": {"code": Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_")},
        "attributes": _attributes(span.attributes),
        "events": [
            {
                "name": event.name,
                "time": _time(event.time_unix_nano),
                "attributes": _attributes(event.attributes),
            }
            for event in span.events
        ],
        "scope": scope,
        "resource": resource,
    }
    if span.status.message:
        entry["status"]["message"] = span.status.message
    return entry


def _time(unix_ns: int) -> str:
    moment = datetime.fromtimestamp(unix_ns // 1_000_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{unix_ns % 1_000_000_000:09d}Z"


def _attributes(items: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in items:
        assert isinstance(item, KeyValue)
        result[item.key] = _value(item.value)
    return result


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(inner) for inner in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind is None:
        return None
    return getattr(value, kind)
