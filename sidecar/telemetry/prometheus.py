"""The Prometheus sink: turns finished CallRecords into the call metrics (docs/metrics.md).

The metrics are defined once, in `METRICS` (sidecar/telemetry/metric_defs.py, re-exported
here), and registered once in the sidecar's `MetricRegistry` (registry.py); that table also
drives the generated docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

from sidecar.record import CallRecord
from sidecar.telemetry.metric_defs import (
    CONFIDENCE,
    COST,
    COST_UNKNOWN,
    DURATION_BUCKETS,
    IN_FLIGHT,
    LOW_CONFIDENCE,
    METRICS,
    OPERATION_DURATION,
    OVERHEAD,
    REPEAT_OUTPUTS,
    REQUESTS,
    RETRIES,
    TIME_PER_OUTPUT_CHUNK,
    TIME_TO_FIRST_CHUNK,
    TOKEN_USAGE,
    TOKENS,
)
from sidecar.telemetry.registry import MetricRegistry

__all__ = ["DURATION_BUCKETS", "METRICS", "PrometheusSink"]

# Cached per-label-set children; past this many label sets the oldest is forgotten
# (its series stay in the registry, only the shortcut to them goes).
MAX_CACHED_LABEL_SETS = 2048


class _LabelSet:
    """The children of every metric for one set of common label values, made on first use."""

    __slots__ = ("_children", "_metrics", "_values")

    def __init__(self, metrics: MetricRegistry, values: tuple[str, ...]) -> None:
        self._metrics = metrics
        self._values = values
        self._children: dict[tuple[str, ...], Any] = {}

    def child(self, *key: str) -> Any:
        """The child of metric `key[0]` whose extra labels take the values `key[1:]`."""
        child = self._children.get(key)
        if child is None:
            child = self._metrics.metric(key[0]).labels(*self._values, *key[1:])
            self._children[key] = child
        return child


def _token_counts(record: CallRecord) -> Iterator[tuple[str, int]]:
    """(token type, count) for every count the provider reported."""
    for token_type, count in (
        ("input", record.input_tokens),
        ("output", record.output_tokens),
        ("cache_read", record.cache_read_tokens),
        ("cache_creation", record.cache_creation_tokens),
        ("reasoning", record.reasoning_tokens),
    ):
        if count is not None:
            yield token_type, count


class PrometheusSink:
    """A pipeline sink that writes the call metrics into the sidecar's MetricRegistry."""

    name = "prometheus"

    def __init__(self, metrics: MetricRegistry) -> None:
        self.metrics = metrics
        self.request_models = metrics.request_models
        self.response_models = metrics.response_models
        self._label_sets: dict[tuple[str, ...], _LabelSet] = {}
        # Bounded by configuration: operations, providers and upstreams are fixed sets.
        self._in_flight: dict[tuple[str, str, str], Any] = {}
        self._in_flight_gauge = metrics.metric(IN_FLIGHT.name)

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

    def call_started(self, record: CallRecord) -> None:
        """Count the call as in flight."""
        self._in_flight_child(record).inc()

    def call_finished(self, record: CallRecord) -> None:
        """Observe everything measured about one finished call."""
        self._in_flight_child(record).dec()
        series = self._label_set(record)
        status = record.http_status
        series.child(REQUESTS.name, record.outcome, "" if status is None else str(status)).inc()
        series.child(OPERATION_DURATION.name, record.error_type).observe(record.duration)
        series.child(OVERHEAD.name).observe(record.overhead)

        if record.request.stream and record.first_chunk is not None:
            series.child(TIME_TO_FIRST_CHUNK.name).observe(record.first_chunk - record.received)
            if len(record.chunk_times) > 1:
                per_chunk = series.child(TIME_PER_OUTPUT_CHUNK.name)
                for previous, current in pairwise(record.chunk_times):
                    per_chunk.observe(current - previous)

        for token_type, count in _token_counts(record):
            series.child(TOKENS.name, token_type).inc(count)
            if token_type in ("input", "output"):
                series.child(TOKEN_USAGE.name, token_type).observe(count)

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

    def dropped(self, record: CallRecord) -> None:
        """Count a finished call the pipeline dropped, and end its in-flight count."""
        self.metrics.drops.add("pipeline", 1)
        self._in_flight_child(record).dec()

    def close(self) -> None:
        """Nothing to flush: the registry lives as long as the sidecar."""

    def render(self, accept: str) -> tuple[bytes, str]:
        """The /metrics body and its content type (the registry's exposition)."""
        return self.metrics.render(accept)
