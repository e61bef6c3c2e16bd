"""The Prometheus sink: turns finished CallRecords into the call metrics (docs/metrics.md).

Which GenAI instruments a call records depends on the sidecar's convention generations and
the call's operation (`Recording`s in conventions.py); each call is measured once and the
values are written to every instrument that wants them (both names in `dup` mode). Duration
and time-to-first-chunk observations of sampled calls carry the trace id as an exemplar,
which only the OpenMetrics exposition shows.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from sidecar.record import OK, CallRecord
from sidecar.telemetry.conventions import (
    ATTRIBUTION_COST,
    ATTRIBUTION_REQUESTS,
    ATTRIBUTION_TOKENS,
    CHUNK_GAPS,
    CONFIDENCE,
    COST,
    COST_UNKNOWN,
    DURATION,
    FIRST_CHUNK,
    IN_FLIGHT,
    LOW_CONFIDENCE,
    OVERHEAD,
    PER_OPERATION,
    RATELIMIT_HEADER_ERRORS,
    RATELIMIT_LIMIT,
    RATELIMIT_REMAINING,
    RATELIMIT_RESET,
    REALTIME_FIRST_OUTPUT,
    REPEAT_OUTPUTS,
    REQUESTS,
    RETRIES,
    TOKEN_FIELDS,
    TOKENS,
    TOKENS_BY_TYPE,
    UNKNOWN_MODALITY,
    USAGE,
    Recording,
    recordings_for,
)
from sidecar.telemetry.registry import MetricRegistry

__all__ = ["MAX_CACHED_LABEL_SETS", "PrometheusSink"]

# Cached per-label-set children; past this many label sets the oldest is forgotten
# (its series stay in the registry, only the shortcut to them goes).
MAX_CACHED_LABEL_SETS = 2048
# model_sidecar_tokens_total's token types, and the record field each reads.
_SIDECAR_TOKEN_TYPES = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_read", "cache_read_tokens"),
    ("cache_creation", "cache_creation_tokens"),
    ("reasoning", "reasoning_tokens"),
    ("input_audio", "input_audio_tokens"),
    ("output_audio", "output_audio_tokens"),
    ("cache_read_audio", "cache_read_audio_tokens"),
)

# The gauges of one quota window, in RateLimit's order (limit, remaining, reset).
_QUOTA_GAUGES = (RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET)


class _LabelSet:
    """The children of every metric for one set of common label values, made on first use."""

    __slots__ = ("_children", "_metrics", "values")

    def __init__(self, metrics: MetricRegistry, values: tuple[str, ...]) -> None:
        self._metrics = metrics
        # The common label values, in COMMON_LABELS order.
        self.values = values
        self._children: dict[tuple[str, ...], Any] = {}

    def child(self, *key: str) -> Any:
        """The child of metric `key[0]` whose extra labels take the values `key[1:]`."""
        child = self._children.get(key)
        if child is None:
            child = self._metrics.metric(key[0]).labels(*self.values, *key[1:])
            self._children[key] = child
        return child


class _CallPlan:
    """The GenAI instruments calls of one operation record, by what they observe: Prometheus
    names (with whether they take exemplars), each once even when two generations share one."""

    __slots__ = (
        "chunk_gaps",
        "durations",
        "first_chunk",
        "per_operation",
        "tokens_by_type",
        "usage",
    )

    def __init__(self, recordings: tuple[Recording, ...]) -> None:
        def names(measure: str) -> tuple[tuple[str, bool], ...]:
            chosen = (r.instrument for r in recordings if r.measure == measure)
            return tuple(dict.fromkeys((i.name, i.exemplars) for i in chosen))

        def tokens(measure: str) -> tuple[tuple[str, str], ...]:
            chosen = (r for r in recordings if r.measure == measure)
            return tuple((r.instrument.name, TOKEN_FIELDS[r.token]) for r in chosen)

        self.durations = names(DURATION)
        self.first_chunk = names(FIRST_CHUNK)
        self.chunk_gaps = tuple(name for name, _ in names(CHUNK_GAPS))
        self.tokens_by_type = tuple(name for name, _ in names(TOKENS_BY_TYPE))
        self.usage = tokens(USAGE)
        self.per_operation = tokens(PER_OPERATION)


class PrometheusSink:
    """A pipeline sink that writes the call metrics into the sidecar's MetricRegistry."""

    name = "prometheus"

    def __init__(self, metrics: MetricRegistry) -> None:
        self.metrics = metrics
        self.request_models = metrics.request_models
        self.response_models = metrics.response_models
        self._label_sets: dict[tuple[str, ...], _LabelSet] = {}
        self._recordings = recordings_for(metrics.generations)
        # Operations are a fixed vocabulary of the protocols: one plan each.
        self._plans: dict[str, _CallPlan] = {}
        # Bounded by configuration: operations, providers and upstreams are fixed sets.
        self._in_flight: dict[tuple[str, str, str], Any] = {}
        self._in_flight_gauge = metrics.metric(IN_FLIGHT.name)
        # (upstream, model, kind) -> the limit, remaining and reset gauges (bounded: upstreams
        # x bounded models x four kinds).
        self._quota_gauges: dict[tuple[str, str, str], list[Any]] = {}

    def _in_flight_child(self, record: CallRecord) -> Any:
        key = (record.request.operation, record.provider_name, record.upstream)
        child = self._in_flight.get(key)
        if child is None:
            child = self._in_flight[key] = self._in_flight_gauge.labels(*key)
        return child

    def _label_set(self, record: CallRecord) -> _LabelSet:
        values = (
            record.request.operation,
            record.provider_name,
            self.request_models.resolve(record.request.request_model),
            self.response_models.resolve(record.response_model),
            record.upstream,
            record.experiment,
            record.variant,
        )
        label_set = self._label_sets.get(values)
        if label_set is None:
            if len(self._label_sets) >= MAX_CACHED_LABEL_SETS:
                del self._label_sets[next(iter(self._label_sets))]
            label_set = self._label_sets[values] = _LabelSet(self.metrics, values)
        return label_set

    def _plan(self, operation: str) -> _CallPlan:
        plan = self._plans.get(operation)
        if plan is None:
            recordings = tuple(r for r in self._recordings if operation in r.operations)
            plan = self._plans[operation] = _CallPlan(recordings)
        return plan

    def call_started(self, record: CallRecord) -> None:
        """Count the call as in flight."""
        self._in_flight_child(record).inc()

    def call_finished(self, record: CallRecord) -> None:
        """Observe everything measured about one finished call."""
        self._in_flight_child(record).dec()
        series = self._label_set(record)
        plan = self._plan(record.request.operation)
        status = record.http_status
        # The trace of a call whose span is exported: Grafana jumps from a bucket to it.
        exemplar = (
            {"trace_id": f"{record.trace_id:032x}"}
            if record.span_sampled and record.trace_id
            else None
        )
        series.child(REQUESTS.name, record.outcome, "" if status is None else str(status)).inc()
        error_type = record.error_type
        duration = record.duration
        for name, exemplars in plan.durations:
            series.child(name, error_type).observe(duration, exemplar if exemplars else None)
        series.child(OVERHEAD.name).observe(record.overhead)

        if record.request.stream and record.first_chunk is not None:
            first_chunk = record.first_chunk - record.received
            for name, exemplars in plan.first_chunk:
                series.child(name).observe(first_chunk, exemplar if exemplars else None)
            if len(record.chunk_times) > 1 and plan.chunk_gaps:
                gaps = [current - previous for previous, current in pairwise(record.chunk_times)]
                for name in plan.chunk_gaps:
                    per_chunk = series.child(name)
                    for gap in gaps:
                        per_chunk.observe(gap)

        # Realtime responses: the first text and the first audio delta, each on its own.
        for modality, first in (
            ("text", record.first_text_chunk),
            ("audio", record.first_audio_chunk),
        ):
            if first is not None:
                series.child(REALTIME_FIRST_OUTPUT.name, modality).observe(
                    first - record.received, exemplar
                )

        for token_type, field in _SIDECAR_TOKEN_TYPES:
            count = getattr(record, field)
            if count is not None:
                series.child(TOKENS.name, token_type).inc(count)
                if token_type in ("input", "output"):
                    for name in plan.tokens_by_type:
                        series.child(name, token_type).observe(count)
        for name, field in plan.usage:
            series.child(name, UNKNOWN_MODALITY).inc(getattr(record, field) or 0)
        if record.outcome == OK:
            for name, field in plan.per_operation:
                count = getattr(record, field)
                if count is not None:
                    series.child(name).observe(count)

        if record.client_retry:
            series.child(RETRIES.name, "client", "").inc()
        for attempt in record.retry_attempts:
            series.child(RETRIES.name, "sidecar", attempt.reason).inc()
        if record.confidence is not None:
            series.child(CONFIDENCE.name).observe(record.confidence)
            if record.low_confidence:
                series.child(LOW_CONFIDENCE.name).inc()
        if record.cost_usd is not None:
            series.child(COST.name).inc(max(0.0, record.cost_usd))
        elif record.input_tokens is not None or record.output_tokens is not None:
            series.child(COST_UNKNOWN.name).inc()
        if record.repeat_result is not None:
            series.child(REPEAT_OUTPUTS.name, record.repeat_result).inc()
        # Quota headroom and attribution (issue #21).
        # The request model as bounded for this call's label set (resolved once per call).
        model = series.values[2]
        if record.rate_limits or record.rate_limit_errors:
            self._quota(record, model)
        if record.attribution is not None:
            self._attributed(record, model)

    def _quota(self, record: CallRecord, model: str) -> None:
        """The provider's last word on its quota windows (gauges: the newest answer wins)."""
        for window in record.rate_limits:
            key = (record.upstream, model, window.kind)
            gauges = self._quota_gauges.get(key)
            if gauges is None:
                if len(self._quota_gauges) >= MAX_CACHED_LABEL_SETS:
                    del self._quota_gauges[next(iter(self._quota_gauges))]
                gauges = self._quota_gauges[key] = [None, None, None]
            values = (window.limit, window.remaining, window.reset_seconds)
            for index, value in enumerate(values):
                if value is None:
                    continue  # never reported (Azure has no limit): no series, not a 0
                gauge = gauges[index]
                if gauge is None:
                    name = _QUOTA_GAUGES[index].name
                    gauge = gauges[index] = self.metrics.metric(name).labels(*key)
                gauge.set(value)
        # Also by 0: the series exists from the first answer with headers (increase() sees
        # the first malformed one).
        self.metrics.inc(RATELIMIT_HEADER_ERRORS, (record.upstream,), record.rate_limit_errors)

    def _attributed(self, record: CallRecord, model: str) -> None:
        """Calls, tokens and cost by the call's (bounded) attribution value."""
        metrics = self.metrics
        labels = (record.attribution or "", record.provider_name, model, record.upstream)
        status = record.http_status
        metrics.inc(
            ATTRIBUTION_REQUESTS, (*labels, record.outcome, "" if status is None else str(status))
        )
        for token_type, field in _SIDECAR_TOKEN_TYPES:
            count = getattr(record, field)
            if count:
                metrics.inc(ATTRIBUTION_TOKENS, (*labels, token_type), count)
        if record.cost_usd is not None:
            metrics.inc(ATTRIBUTION_COST, labels, max(0.0, record.cost_usd))

    def dropped(self, record: CallRecord) -> None:
        """Count a finished call the pipeline dropped, and end its in-flight count."""
        self.metrics.drops.add("pipeline", 1)
        self._in_flight_child(record).dec()

    def close(self) -> None:
        """Nothing to flush: the registry lives as long as the sidecar."""

    def render(self, accept: str) -> tuple[bytes, str]:
        """The /metrics body and its content type (the registry's exposition)."""
        return self.metrics.render(accept)
