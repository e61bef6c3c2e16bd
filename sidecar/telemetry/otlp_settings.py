"""OTLP exporter, resource and sampler settings, read from the standard `OTEL_*` variables."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
    Resource,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.util.re import parse_env_headers

from sidecar.config.otel import DEFAULT_EXPORT_TIMEOUT_MS, DEFAULT_SERVICE_NAME

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter

    from sidecar.telemetry.otlp_transport import OtlpSender

log = logging.getLogger("sidecar.telemetry.otlp_settings")


TRACES = "traces"
METRICS = "metrics"


@dataclass(frozen=True)
class ExporterSettings:
    """Where and how to send one signal (spans or metrics), from the OTEL_EXPORTER_OTLP_*
    variables: the signal's own (`OTEL_EXPORTER_OTLP_TRACES_*`, `…_METRICS_*`) first."""

    protocol: str
    endpoint: str
    headers: dict[str, str]
    timeout: float  # seconds
    gzip: bool
    insecure: bool
    certificate: str | None
    client_key: str | None
    client_certificate: str | None

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], signal: str = TRACES
    ) -> ExporterSettings | None:
        """The settings of `signal`, or None when no OTLP endpoint is configured."""
        prefix = f"OTEL_EXPORTER_OTLP_{signal.upper()}_"

        def setting(name: str) -> str | None:
            value = environ.get(prefix + name) or environ.get(f"OTEL_EXPORTER_OTLP_{name}")
            return value.strip() if value else None

        protocol = (setting("PROTOCOL") or "http/protobuf").lower()
        if protocol not in ("grpc", "http/protobuf"):
            log.warning("OTLP protocol %r is not supported; using http/protobuf", protocol)
            protocol = "http/protobuf"
        signal_endpoint = (environ.get(prefix + "ENDPOINT") or "").strip()
        base_endpoint = (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
        if signal_endpoint:
            endpoint = signal_endpoint
        elif base_endpoint:
            endpoint = base_endpoint
            if protocol == "http/protobuf":
                endpoint = endpoint.rstrip("/") + f"/v1/{signal}"
        else:
            return None
        scheme = urlsplit(endpoint).scheme
        if scheme in ("http", "https"):
            insecure = scheme == "http"
        else:
            insecure = (setting("INSECURE") or "").lower() == "true"
        timeout_ms = _float(
            setting("TIMEOUT"), DEFAULT_EXPORT_TIMEOUT_MS, "OTEL_EXPORTER_OTLP_TIMEOUT"
        )
        return cls(
            protocol=protocol,
            endpoint=endpoint,
            headers=dict(parse_env_headers(setting("HEADERS") or "", liberal=True)),
            timeout=max(timeout_ms, 1.0) / 1000,
            gzip=(setting("COMPRESSION") or "").lower() == "gzip",
            insecure=insecure,
            certificate=setting("CERTIFICATE"),
            client_key=setting("CLIENT_KEY"),
            client_certificate=setting("CLIENT_CERTIFICATE"),
        )

    def build_sender(self) -> OtlpSender:
        """A sender over the SDK's OTLP exporter for this protocol, every setting explicit."""
        if self.protocol == "grpc":
            return self._grpc_sender()
        return self._http_sender()

    def _grpc_sender(self) -> OtlpSender:
        import grpc

        from sidecar.telemetry.otlp_transport_grpc import EncodedRequestGrpcExporter, GrpcSender

        credentials = None
        if not self.insecure:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(self.certificate),
                private_key=_read(self.client_key),
                certificate_chain=_read(self.client_certificate),
            )
        exporter = EncodedRequestGrpcExporter(
            endpoint=self.endpoint,
            insecure=self.insecure,
            credentials=credentials,
            headers=self.headers,
            timeout=self.timeout,
            compression=grpc.Compression.Gzip if self.gzip else grpc.Compression.NoCompression,
        )
        return GrpcSender(exporter)

    def _http_sender(self) -> OtlpSender:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        from sidecar.telemetry.otlp_transport import HttpSender

        exporter = OTLPSpanExporter(
            endpoint=self.endpoint,
            certificate_file=self.certificate,
            client_key_file=self.client_key,
            client_certificate_file=self.client_certificate,
            headers=self.headers,
            timeout=self.timeout,
            compression=Compression.Gzip if self.gzip else Compression.NoCompression,
        )
        return HttpSender(exporter)

    def build_metric_exporter(self) -> MetricExporter:
        """The SDK's OTLP metric exporter for this protocol, every setting explicit; it is
        handed whole MetricsData through its public `export`."""
        if self.protocol == "grpc":
            import grpc
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetricExporter,
            )

            credentials = None
            if not self.insecure:
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=_read(self.certificate),
                    private_key=_read(self.client_key),
                    certificate_chain=_read(self.client_certificate),
                )
            return GrpcMetricExporter(
                endpoint=self.endpoint,
                insecure=self.insecure,
                credentials=credentials,
                headers=self.headers,
                timeout=self.timeout,
                compression=grpc.Compression.Gzip if self.gzip else grpc.Compression.NoCompression,
            )
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter(
            endpoint=self.endpoint,
            certificate_file=self.certificate,
            client_key_file=self.client_key,
            client_certificate_file=self.client_certificate,
            headers=self.headers,
            timeout=self.timeout,
            compression=Compression.Gzip if self.gzip else Compression.NoCompression,
        )


def resource_from_environ(environ: Mapping[str, str]) -> Resource:
    """SDK attributes, OTEL_RESOURCE_ATTRIBUTES and the service name (OTEL_SERVICE_NAME wins)."""
    attributes: dict[str, str] = {
        TELEMETRY_SDK_LANGUAGE: "python",
        TELEMETRY_SDK_NAME: "opentelemetry",
        TELEMETRY_SDK_VERSION: sdk_version,
        SERVICE_NAME: DEFAULT_SERVICE_NAME,
    }
    for item in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
    service = environ.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        attributes[SERVICE_NAME] = service
    return Resource(attributes)


def sampler_from_environ(environ: Mapping[str, str]) -> Sampler:
    """The sampler OTEL_TRACES_SAMPLER(_ARG) names; parent-based always-on by default."""
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    ratio = min(
        max(_float(environ.get("OTEL_TRACES_SAMPLER_ARG"), 1.0, "OTEL_TRACES_SAMPLER_ARG"), 0.0),
        1.0,
    )
    roots: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
    }
    parent_based = name.startswith("parentbased_")
    root = roots.get(name.removeprefix("parentbased_"))
    if root is None:
        log.warning("unknown OTEL_TRACES_SAMPLER %r; using parentbased_always_on", name)
        return ParentBased(ALWAYS_ON)
    return ParentBased(root) if parent_based else root


def int_setting(environ: Mapping[str, str], name: str, default: int) -> int:
    """A positive integer setting from `environ`, or `default` when unset or invalid."""
    return max(int(_float(environ.get(name), default, name)), 1)


def _float(value: str | None, default: float, name: str) -> float:
    if value is None or not value.strip():
        return default
    try:
        return float(value)
    except ValueError:
        log.warning("%s=%r is not a number; using %s", name, value, default)
        return default


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as file:
        return file.read()
