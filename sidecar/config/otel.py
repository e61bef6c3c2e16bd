"""The standard OpenTelemetry variables the sidecar reads, and its defaults where they are unset.

Tracing is configured only through these (never through the config file), so that a sidecar
is set up like any other OpenTelemetry SDK.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_SERVICE_NAME = "model-sidecar"
# Shorter than the specification's 10 s: a stuck collector then costs less at shutdown.
DEFAULT_EXPORT_TIMEOUT_MS = 5000
# OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT values that opt in to content capture.
CAPTURE_CONTENT_VALUES = ("true", "span_only", "span_and_event")

# `OTEL_TRACES_EXPORTER` values the sidecar knows (the specification's names).
OTLP = "otlp"
CONSOLE = "console"
NONE = "none"


def sdk_disabled(environ: Mapping[str, str]) -> bool:
    """OTEL_SDK_DISABLED=true: no spans and no OTLP metrics, whatever else is set."""
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def traces_exporter_names(value: str | None) -> list[str]:
    """The exporters `OTEL_TRACES_EXPORTER` names (comma-separated), `otlp` when unset."""
    names = [name.strip().lower() for name in (value or "").split(",") if name.strip()]
    return names or [OTLP]


def wants_spans(environ: Mapping[str, str]) -> bool:
    """Whether the variables may ask for spans: then the OpenTelemetry SDK and the exporter
    are loaded (sidecar/telemetry/tracing.py decides the rest); otherwise a sidecar never
    imports them (~10 MB and ~0.1 s of start-up, issue #23). An unknown exporter name also
    counts, so that the tracing code can say it is not supported."""
    if sdk_disabled(environ):
        return False
    names = traces_exporter_names(environ.get("OTEL_TRACES_EXPORTER"))
    if NONE in names:
        return False
    if any(name != OTLP for name in names):
        return True
    return any(
        (environ.get(name) or "").strip()
        for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def wants_otlp_metrics(environ: Mapping[str, str]) -> bool:
    """Whether OTEL_METRICS_EXPORTER asks for OTLP (opt-in: unset means no)."""
    if sdk_disabled(environ):
        return False
    exporters = {
        item.strip().lower() for item in environ.get("OTEL_METRICS_EXPORTER", "").split(",")
    }
    return "otlp" in exporters
