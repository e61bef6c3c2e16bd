"""Send already-encoded OTLP trace requests through the SDK's own OTLP exporters.

The SDK exporters only take SDK spans, and encode them themselves. Everything else they
do (TLS, headers, compression, timeouts, retry with backoff, reconnecting) is what we
want, so the senders hand them ready-made `ExportTraceServiceRequest` bytes. That needs
SDK internals; this module (HTTP) and `otlp_transport_grpc` (gRPC, kept apart so that
grpc is only imported when used) are the only ones that touch them:

- HTTP/protobuf: the exporter's `_client.export(bytes)` (the SDK's HTTP client with retry).
- gRPC: the exporter mixin's `_stub` (swapped for a stub that takes bytes),
  `_translate_data`/`_count_data` (its per-signal hooks) and `_export` (retry loop).

Building a sender checks that those internals are there and raises `SdkInternalsChanged`
naming what moved, so an SDK upgrade fails loudly (in tests, and as an error the sidecar
logs when its first export builds the sender), never silently.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)

log = logging.getLogger("sidecar.telemetry.otlp_transport")

MAX_HTTP_REQUEST_BYTES = 64 * 1024 * 1024  # the SDK HTTP exporter's own limit


class SdkInternalsChanged(RuntimeError):
    """The installed OpenTelemetry exporter no longer has what this module relies on."""


class OtlpSender(Protocol):
    """Sends one encoded ExportTraceServiceRequest; True when the collector took it."""

    def send(self, request: bytes, span_count: int) -> bool: ...

    def shutdown(self) -> None: ...


class HttpSender:
    """OTLP/HTTP protobuf through the SDK HTTP exporter's client (retry, gzip, TLS, headers)."""

    def __init__(self, exporter: HttpSpanExporter) -> None:
        self.exporter = exporter
        self._post = require_callable(exporter, "_client", "export")

    def send(self, request: bytes, span_count: int) -> bool:
        if len(request) > MAX_HTTP_REQUEST_BYTES:
            log.warning("dropping %d spans: the request is %d bytes", span_count, len(request))
            return False
        return bool(self._post(request).success)

    def shutdown(self) -> None:
        self.exporter.shutdown()  # type: ignore[no-untyped-call]


def require_callable(owner: object, *path: str) -> Any:
    """`owner.<path>`, which must exist and be callable, else SdkInternalsChanged."""
    target = owner
    for name in path:
        target = getattr(target, name, None)
    if not callable(target):
        kind = type(owner).__name__ if not isinstance(owner, type) else owner.__name__
        raise SdkInternalsChanged(
            f"OpenTelemetry {kind} has no callable `{'.'.join(path)}` any more: "
            "sidecar/telemetry/otlp_transport*.py must follow the SDK"
        )
    return target
