"""OpenTelemetry spans: one CLIENT span per finished call, exported over OTLP by a batch processor.

Configured only by the standard `OTEL_*` variables, read from the mapping it is given
(`OTEL_TRACES_EXPORTER=console` prints the spans on stdout instead, for local debugging).
Spans are built after the call is over, from the recorded times, and encoded straight to
OTLP protobuf on the pipeline's task (no SDK span objects, no GIL-heavy work on the export
thread); the SDK's BatchSpanProcessor queues them and its worker thread sends them with
the SDK's OTLP exporter, so a collector that is down or slow costs spans, never a call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, cast

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanContext, TraceFlags

from sidecar.config.models import TelemetryConfig
from sidecar.config.otel import (
    CAPTURE_CONTENT_VALUES,
    CONSOLE,
    NONE,
    OTLP,
    sdk_disabled,
    traces_exporter_names,
)
from sidecar.record import CallRecord, SessionRecord
from sidecar.telemetry.conventions import V1_41, Generation
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.otlp_encoder import OtlpSpanEncoder
from sidecar.telemetry.otlp_settings import (
    ExporterSettings,
    int_setting,
    resource_from_environ,
    sampler_from_environ,
)
from sidecar.telemetry.sampling import SpanSampler
from sidecar.telemetry.session_spans import (
    session_attributes,
    session_events,
    session_is_error,
    session_span_name,
)
from sidecar.telemetry.span_attributes import (
    SpanAttributeKeys,
    content_attributes,
    is_error,
    span_attributes,
    span_events,
    span_name,
)

if TYPE_CHECKING:
    from sidecar.telemetry.otlp_transport import OtlpSender

log = logging.getLogger("sidecar.telemetry.tracing")

SINK_NAME = "tracing"
SCOPE_NAME = "model_sidecar"
DEFAULT_CLOSE_TIMEOUT_S = 5.0


def build_tracing_sink(
    telemetry: TelemetryConfig,
    environ: Mapping[str, str],
    drops: TelemetryDrops,
    generations: Sequence[Generation] = (V1_41,),
) -> TracingSink | None:
    """A TracingSink when an exporter is configured (OTLP with an endpoint, or
    `OTEL_TRACES_EXPORTER=console`) and the SDK is not disabled, else None."""
    if sdk_disabled(environ):
        return None
    sender = _sender_from_environ(environ)
    if sender is None:
        return None
    capture = (
        environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower()
        in CAPTURE_CONTENT_VALUES
    )
    encoder = OtlpSpanEncoder(resource_from_environ(environ).attributes, SCOPE_NAME)
    processor = CountingBatchSpanProcessor(
        EncodedSpanExporter(encoder, sender),
        on_drop=lambda count: drops.add(SINK_NAME, count),
        max_queue_size=int_setting(environ, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
        schedule_delay_millis=int_setting(environ, "OTEL_BSP_SCHEDULE_DELAY", 5000),
        max_export_batch_size=int_setting(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        export_timeout_millis=int_setting(environ, "OTEL_BSP_EXPORT_TIMEOUT", 30000),
    )
    return TracingSink(
        processor,
        encoder,
        sampler=SpanSampler(sampler_from_environ(environ)),
        capture_content=capture and telemetry.capture_content_max_chars > 0,
        capture_content_max_chars=telemetry.capture_content_max_chars,
        keys=SpanAttributeKeys(generations),
        prepare=sender.prepare if isinstance(sender, DeferredSender) else None,
    )


def _sender_from_environ(environ: Mapping[str, str]) -> OtlpSender | None:
    """Where spans go, as OTEL_TRACES_EXPORTER says (`otlp` by default, `console`, both, or
    `none`); None when nowhere."""
    senders: list[OtlpSender] = []
    for name in traces_exporter_names(environ.get("OTEL_TRACES_EXPORTER")):
        if name == NONE:
            return None
        if name == OTLP:
            settings = ExporterSettings.from_environ(environ)
            if settings is not None:
                senders.append(DeferredSender(settings))
        elif name == CONSOLE:
            from sidecar.telemetry.console_exporter import ConsoleSender

            senders.append(ConsoleSender())
        else:
            log.warning("OTEL_TRACES_EXPORTER %r is not supported (otlp, console, none)", name)
    if len(senders) > 1:
        from sidecar.telemetry.console_exporter import FanoutSender

        return FanoutSender(senders)
    return senders[0] if senders else None


class DeferredSender:
    """The OTLP sender, built once the sidecar is ready (`prepare`), or by the first export.

    Building it imports the SDK's OTLP exporter and its HTTP stack (requests, protobuf) or
    gRPC: ~0.1 s that a sidecar no longer spends before it is ready (issue #23). A sender
    that cannot be built (an SDK whose internals moved: `SdkInternalsChanged`) is logged as
    an error once and its spans are dropped (counted), never raised into a call.
    """

    def __init__(self, settings: ExporterSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._sender: OtlpSender | None = None
        self._failed = False

    def prepare(self) -> None:
        """Build the sender now on a thread of its own (once); sends wait for it."""
        threading.Thread(target=self._built, name="otlp-sender-build", daemon=True).start()

    def _built(self) -> OtlpSender | None:
        with self._lock:
            if self._sender is None and not self._failed:
                try:
                    self._sender = self._settings.build_sender()
                except Exception:
                    self._failed = True
                    log.exception("cannot build the OTLP span exporter: spans are dropped")
            return self._sender

    def send(self, request: bytes, span_count: int) -> bool:
        sender = self._built()
        return sender.send(request, span_count) if sender is not None else False

    def shutdown(self) -> None:
        with self._lock:
            sender = self._sender
        if sender is not None:
            sender.shutdown()


class TracingSink:
    """A pipeline Sink that turns each finished CallRecord into one encoded CLIENT span."""

    name = SINK_NAME

    def __init__(
        self,
        processor: CountingBatchSpanProcessor,
        encoder: OtlpSpanEncoder,
        *,
        sampler: SpanSampler,
        capture_content: bool = False,
        capture_content_max_chars: int = 16384,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT_S,
        keys: SpanAttributeKeys | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.capture_content = capture_content
        self._prepare = prepare
        self.capture_content_max_chars = capture_content_max_chars
        self.close_timeout = close_timeout
        self._processor = processor
        self.encoder = encoder
        # Also the SpanSampling stage's: the stage decides, the sink follows the decision.
        self.sampler = sampler
        self._keys = keys or SpanAttributeKeys((V1_41,))
        self._ids = RandomIdGenerator()
        self._closed = False

    def prepare_export(self) -> None:
        """Get the exporter ready in the background (the sidecar calls this once it is
        listening), so that neither readiness nor the first export waits for it."""
        if self._prepare is not None:
            self._prepare()

    def call_started(self, record: CallRecord) -> None:
        """Nothing to do: the span is built once the call is over."""

    def call_finished(self, record: CallRecord) -> None:
        """Sample, encode and queue the span with the recorded ids and times (never blocks)."""
        if self._closed:
            return
        span = self.encode(record)
        if span is not None:
            self._processor.queue(span)

    def encode(self, record: CallRecord) -> EncodedSpan | None:
        """The call's span, encoded, or None when the sampler drops it."""
        trace_id = record.trace_id or self._ids.generate_trace_id()
        parent_span_id = (record.parent_span_id or None) if record.trace_id else None
        name = span_name(record)
        sampled = record.span_sampled if record.trace_id else None
        if sampled is None:
            sampled = self.sampler.sampled(trace_id, parent_span_id, record.trace_sampled, name)
        if not sampled:
            return None
        attributes = span_attributes(record, self._keys)
        if self.capture_content:
            attributes.update(content_attributes(record, self.capture_content_max_chars))
        duration_ns = int(record.duration * 1e9)
        start_ns = record.start_unix_ns or time.time_ns() - duration_ns
        payload = self.encoder.encode_span(
            trace_id=trace_id,
            span_id=record.span_id or self._ids.generate_span_id(),
            parent_span_id=parent_span_id,
            name=name,
            start_unix_ns=start_ns,
            end_unix_ns=start_ns + duration_ns,
            attributes=attributes,
            events=span_events(record),
            error_message=record.error_type if is_error(record) else None,
        )
        return EncodedSpan(payload)

    def session_sampled(self, session: SessionRecord) -> bool:
        """Whether a session's span is exported (decided when it opens, so that its
        responses' spans follow the same decision)."""
        assert session.trace_id is not None
        return self.sampler.sampled(
            session.trace_id,
            session.parent_span_id,
            session.trace_sampled,
            session_span_name(session),
        )

    def session_finished(self, session: SessionRecord) -> None:
        """Encode and queue a finished session's span, unless its sampling decision
        (`session.span_sampled`, else decided now) drops it; never blocks."""
        if self._closed or session.trace_id is None:
            return
        sampled = session.span_sampled
        if sampled is None:
            sampled = self.session_sampled(session)
        if not sampled:
            return
        duration_ns = int(session.duration * 1e9)
        start_ns = session.start_unix_ns or time.time_ns() - duration_ns
        payload = self.encoder.encode_span(
            trace_id=session.trace_id,
            span_id=session.span_id or self._ids.generate_span_id(),
            parent_span_id=session.parent_span_id,
            name=session_span_name(session),
            start_unix_ns=start_ns,
            end_unix_ns=start_ns + duration_ns,
            attributes=session_attributes(session),
            events=session_events(session),
            error_message=session.error_type if session_is_error(session) else None,
        )
        self._processor.queue(EncodedSpan(payload))

    def dropped(self, record: CallRecord) -> None:
        """A call the pipeline dropped: already counted as a pipeline drop, nothing to do here."""

    def close(self) -> None:
        """Send what is queued and stop, waiting at most `close_timeout` seconds."""
        if self._closed:
            return
        self._closed = True
        closer = threading.Thread(
            target=self._processor.shutdown, name="model-sidecar-tracing-close", daemon=True
        )
        closer.start()
        closer.join(self.close_timeout)
        if closer.is_alive():
            log.warning(
                "the OTLP collector did not take the last spans within %.1f s; giving up",
                self.close_timeout,
            )
            self._processor.exporter.shutdown()
        self._processor.report_failed()


# What BatchSpanProcessor.on_end reads of a span: a sampled context (only sampled spans
# are ever queued). The ids are never used: the span's own are inside its payload.
_SAMPLED_CONTEXT = SpanContext(1, 1, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))


class EncodedSpan:
    """One span already encoded as a `ScopeSpans.spans` field, queued in place of an SDK span."""

    __slots__ = ("payload",)
    context = _SAMPLED_CONTEXT

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class EncodedSpanExporter(SpanExporter):
    """Joins a batch of EncodedSpans into one OTLP request and sends it."""

    def __init__(self, encoder: OtlpSpanEncoder, sender: OtlpSender) -> None:
        self.encoder = encoder
        self.sender = sender

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encoded = cast(Sequence[EncodedSpan], spans)
        try:
            request = self.encoder.encode_request([span.payload for span in encoded])
            sent = self.sender.send(request, len(encoded))
        except Exception:  # counted as failed like any other lost batch
            log.exception("exporting %d spans failed", len(encoded))
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS if sent else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.sender.shutdown()


class CountingExporter(SpanExporter):
    """Wraps the OTLP exporter; counts spans that left the batch queue and spans that failed."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        # Both are written by one exporting thread at a time (the SDK holds a lock).
        self.taken = 0
        self.failed = 0
        self._shutdown = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.taken += len(spans)
        result = self.exporter.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        if not self._shutdown:
            self._shutdown = True
            self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor that counts every span it loses: queue full or export failed.

    The SDK drops silently; this one refuses a span itself once `max_queue_size` spans
    wait for export, so the SDK's own queue never overflows and every drop is counted.
    Failed exports are counted on the exporting thread and reported by `report_failed`
    on the calling thread, so `on_drop` is only ever called from the thread ending spans.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        on_drop: Callable[[int], None],
        max_queue_size: int = 2048,
        schedule_delay_millis: float = 5000,
        max_export_batch_size: int = 512,
        export_timeout_millis: float = 30000,
    ) -> None:
        self.exporter = CountingExporter(exporter)
        max_export_batch_size = min(max_export_batch_size, max_queue_size)
        super().__init__(
            self.exporter,
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
            export_timeout_millis=export_timeout_millis,
        )
        self.max_queue_size = max_queue_size
        self.accepted = 0
        self._on_drop = on_drop
        self._failed_reported = 0

    def queue(self, span: EncodedSpan) -> None:
        """Queue a sampled, encoded span for export, or count it dropped when the queue is full."""
        self.report_failed()
        if self.accepted - self.exporter.taken >= self.max_queue_size:
            self._on_drop(1)
            return
        self.accepted += 1
        # The SDK's processor only checks the sampled flag and hands the object, untouched,
        # to the exporter (tests/telemetry/test_tracing_transport.py proves it).
        super().on_end(cast(ReadableSpan, span))

    def report_failed(self) -> None:
        """Pass on the count of spans whose export failed since the last report."""
        failed = self.exporter.failed
        if failed != self._failed_reported:
            self._on_drop(failed - self._failed_reported)
            self._failed_reported = failed
