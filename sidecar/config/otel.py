"""The standard OpenTelemetry variables the sidecar reads, and its defaults where they are unset.

Tracing is configured only through these (never through the config file), so that a sidecar
is set up like any other OpenTelemetry SDK.
"""

from __future__ import annotations

DEFAULT_SERVICE_NAME = "model-sidecar"
# Shorter than the specification's 10 s: a stuck collector then costs less at shutdown.
DEFAULT_EXPORT_TIMEOUT_MS = 5000
# OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT values that opt in to content capture.
CAPTURE_CONTENT_VALUES = ("true", "span_only", "span_and_event")
