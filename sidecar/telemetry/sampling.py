"""Whether a call's span is exported, decided once per call: the tracing sink sends only those
spans, and the Prometheus sink hangs only their trace ids on histogram buckets as exemplars
(an exemplar must lead to a trace that exists)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from sidecar.record import CallRecord, RequestInfo
from sidecar.telemetry.span_attributes import span_name


class SpanSampler:
    """OTEL_TRACES_SAMPLER applied to a call's trace id and the app's parent span."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler

    def sampled(
        self, trace_id: int, parent_span_id: int | None, parent_sampled: bool, name: str
    ) -> bool:
        """True when the span of that trace, child of that parent (None: a root), is kept."""
        decision = self.sampler.should_sample(
            _parent_context(trace_id, parent_span_id, parent_sampled),
            trace_id,
            name,
            SpanKind.CLIENT,
        ).decision
        return decision is Decision.RECORD_AND_SAMPLE


def _parent_context(trace_id: int, parent_span_id: int | None, sampled: bool) -> Context | None:
    """The app's span (from its traceparent) as a remote parent, or None for a root span."""
    if parent_span_id is None:
        return None
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(trace_id, parent_span_id, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(parent))


class SpanSampling:
    """A stage: writes `record.span_sampled` for calls that carry trace ids (tracing is on)."""

    name = "span_sampling"

    def __init__(self, sampler: SpanSampler) -> None:
        self._sampler = sampler

    def needs(self, request: RequestInfo, body: Any) -> int:
        """Nothing to ask of the call before it is forwarded."""
        return 0

    def __call__(self, record: CallRecord) -> None:
        if record.trace_id:
            record.span_sampled = self._sampler.sampled(
                record.trace_id,
                record.parent_span_id or None,
                record.trace_sampled,
                span_name(record),
            )
