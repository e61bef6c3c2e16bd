"""The Prometheus sink: turns finished CallRecords into the metrics of DESIGN.md section 4.

`METRICS` is the one table of metric definitions: it drives registration here and the
generated reference in docs/metrics.md (see sidecar/telemetry/metrics_doc.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from sidecar.config import TelemetryConfig
from sidecar.record import CallRecord
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.labels import ModelLabels

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"

# Semconv gen_ai.client.operation.duration boundaries, extended so p99 is never capped.
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    163.84, 327.68, 600.0,
)  # fmt: skip
# Semconv gen_ai.client.operation.time_per_output_chunk boundaries.
CHUNK_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
# Semconv gen_ai.client.token.usage boundaries: powers of 4 from 1 to 4**13.
TOKEN_BUCKETS = tuple(float(4**power) for power in range(14))
# The sidecar's own time: fine enough to tell 25 µs from 50 µs from 100 µs.
OVERHEAD_BUCKETS = (
    25e-6, 50e-6, 75e-6, 100e-6, 150e-6, 250e-6, 500e-6,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
CONFIDENCE_BUCKETS = tuple(round(0.05 * step, 2) for step in range(1, 21))

# What every label means, for the generated reference.
LABELS = {
    "gen_ai_operation_name": "`chat`, `text_completion`, `embeddings`, `generate_content`, `other`",
    "gen_ai_provider_name": "`openai`, `anthropic`, `gcp.gemini`",
    "gen_ai_request_model": "model the app asked for; empty when none; `other` past the cap",
    "gen_ai_response_model": "model the provider named in its answer; empty when none; "
    "`other` past the cap",
    "upstream": "name of the configured upstream the call went to",
    "experiment": "experiment the call took part in; empty when none",
    "variant": "experiment arm (e.g. `control`, `candidate`); empty when none",
    "error_type": "empty on success, else the upstream HTTP status (e.g. `429`) or `timeout`, "
    "`connection_error`, `client_cancelled`, `stream_interrupted`",
    "outcome": "`ok`, `upstream_error` (status >= 400), `timeout`, `connection_error`, "
    "`client_cancelled`, `stream_interrupted`",
    "http_status_code": "upstream HTTP status; empty when no status arrived",
    "gen_ai_token_type": "`input`, `output` (histogram); counter also `cache_read`, "
    "`cache_creation`, `reasoning`",
    "source": "`client` (calls the app's SDK sent as a retry), `sidecar` (the sidecar's own "
    "retry attempts)",
    "reason": "empty for client retries; for sidecar retries the failed attempt's upstream "
    "status (e.g. `503`) or `connection_error`",
    "result": "`same` (a repeated deterministic request got its earlier output), `different`",
    "sink": "`pipeline` (finished calls dropped before any sink saw them), or a sink's name",
    "label": "`gen_ai_request_model`, `gen_ai_response_model`",
}

COMMON_LABELS = (
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "upstream",
    "experiment",
    "variant",
)
# Known when a call starts; the response model and experiment arm may not be yet.
IN_FLIGHT_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "upstream")


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One exported metric: its exposition name, type, unit, labels, meaning and buckets."""

    name: str
    kind: str
    unit: str
    description: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    # Computed at scrape time from shared state rather than updated per call.
    collected: bool = False


OPERATION_DURATION = MetricDef(
    "gen_ai_client_operation_duration_seconds", HISTOGRAM, "s",
    "GenAI operation duration: from the request's arrival to the last byte forwarded to the app.",
    (*COMMON_LABELS, "error_type"), DURATION_BUCKETS,
)  # fmt: skip
TIME_TO_FIRST_CHUNK = MetricDef(
    "gen_ai_client_operation_time_to_first_chunk_seconds", HISTOGRAM, "s",
    "Time to receive the first chunk of a streaming response, from the request's arrival. "
    "Streaming calls only.",
    COMMON_LABELS, DURATION_BUCKETS,
)  # fmt: skip
TIME_PER_OUTPUT_CHUNK = MetricDef(
    "gen_ai_client_operation_time_per_output_chunk_seconds", HISTOGRAM, "s",
    "Time per output chunk, recorded for each chunk after the first one, from the end of the "
    "previous chunk to the end of the current one. Streaming calls only.",
    COMMON_LABELS, CHUNK_BUCKETS,
)  # fmt: skip
TOKEN_USAGE = MetricDef(
    "gen_ai_client_token_usage", HISTOGRAM, "{token}",
    "Number of input and output tokens used, as reported by the provider (never estimated). "
    "Input includes cached tokens, output includes reasoning tokens.",
    (*COMMON_LABELS, "gen_ai_token_type"), TOKEN_BUCKETS,
)  # fmt: skip
REQUESTS = MetricDef(
    "model_sidecar_requests_total", COUNTER, "{call}",
    "Calls through the sidecar, by outcome and upstream HTTP status.",
    (*COMMON_LABELS, "outcome", "http_status_code"),
)  # fmt: skip
TOKENS = MetricDef(
    "model_sidecar_tokens_total", COUNTER, "{token}",
    "Tokens reported by the provider; input and output equal the gen_ai_client_token_usage sums, "
    "cache_read and cache_creation are part of input, reasoning is part of output.",
    (*COMMON_LABELS, "gen_ai_token_type"),
)  # fmt: skip
COST = MetricDef(
    "model_sidecar_cost_usd_total", COUNTER, "USD",
    "Estimated cost of the calls in US dollars (genai-prices data plus operator overrides).",
    COMMON_LABELS,
)  # fmt: skip
COST_UNKNOWN = MetricDef(
    "model_sidecar_cost_unknown_total", COUNTER, "{call}",
    "Calls that reported token usage but could not be priced (unknown model); they add nothing "
    "to model_sidecar_cost_usd_total.",
    COMMON_LABELS,
)  # fmt: skip
RETRIES = MetricDef(
    "model_sidecar_retries_total", COUNTER, "{retry}",
    "Retries: source=client counts calls the app sent as a retry (x-stainless-retry-count > 0, "
    "or an Idempotency-Key seen within the window); source=sidecar counts the sidecar's own "
    "extra attempts, by the reason the previous attempt failed.",
    (*COMMON_LABELS, "source", "reason"),
)  # fmt: skip
CONFIDENCE = MetricDef(
    "model_sidecar_confidence", HISTOGRAM, "1",
    "Confidence of the first choice (0 to 1) when it was measured: exp(mean token logprob), "
    "or the configured JSON output field or upstream header.",
    COMMON_LABELS, CONFIDENCE_BUCKETS,
)  # fmt: skip
LOW_CONFIDENCE = MetricDef(
    "model_sidecar_low_confidence_total", COUNTER, "{call}",
    "Calls whose confidence was below confidence.threshold.",
    COMMON_LABELS,
)  # fmt: skip
REPEAT_OUTPUTS = MetricDef(
    "model_sidecar_repeat_outputs_total", COUNTER, "{call}",
    "Repeats of a remembered temperature-0 or fixed-seed request, by whether the output "
    "(text and tool calls) matched the earlier one.",
    (*COMMON_LABELS, "result"),
)  # fmt: skip
OVERHEAD = MetricDef(
    "model_sidecar_overhead_seconds", HISTOGRAM, "s",
    "Time spent in the sidecar itself: the call's duration minus time waiting on the upstream "
    "and on the app.",
    COMMON_LABELS, OVERHEAD_BUCKETS,
)  # fmt: skip
IN_FLIGHT = MetricDef(
    "model_sidecar_in_flight_requests", GAUGE, "{call}",
    "Calls received and not yet finished. Labelled only with what is known when a call starts.",
    IN_FLIGHT_LABELS,
)  # fmt: skip
TELEMETRY_DROPPED = MetricDef(
    "model_sidecar_telemetry_dropped_total", COUNTER, "{item}",
    "Telemetry dropped because a queue was full: sink=pipeline counts finished calls no sink "
    "saw; other sinks count their own items (e.g. spans).",
    ("sink",), collected=True,
)  # fmt: skip
LABEL_OVERFLOW = MetricDef(
    "model_sidecar_label_overflow_total", COUNTER, "{call}",
    "Calls whose model label was replaced by `other` because the label already had "
    "telemetry.max_model_labels distinct values.",
    ("label",), collected=True,
)  # fmt: skip

METRICS = (
    OPERATION_DURATION,
    TIME_TO_FIRST_CHUNK,
    TIME_PER_OUTPUT_CHUNK,
    TOKEN_USAGE,
    REQUESTS,
    TOKENS,
    COST,
    COST_UNKNOWN,
    RETRIES,
    CONFIDENCE,
    LOW_CONFIDENCE,
    REPEAT_OUTPUTS,
    OVERHEAD,
    IN_FLIGHT,
    TELEMETRY_DROPPED,
    LABEL_OVERFLOW,
)

# Cached per-label-set children; past this many label sets the oldest is forgotten
# (its series stay in the registry, only the shortcut to them goes).
MAX_CACHED_LABEL_SETS = 2048


def register(metric: MetricDef, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
    """Create the prometheus_client metric for one definition on `registry`."""
    unit = "seconds" if metric.unit == "s" else ""
    if metric.kind == COUNTER:
        return Counter(metric.name, metric.description, metric.labels, registry=registry)
    if metric.kind == GAUGE:
        return Gauge(metric.name, metric.description, metric.labels, unit=unit, registry=registry)
    return Histogram(
        metric.name,
        metric.description,
        metric.labels,
        unit=unit,
        buckets=metric.buckets,
        registry=registry,
    )


class _LabelSet:
    """The children of every metric for one set of common label values, made on first use."""

    __slots__ = ("_children", "_metrics", "_values")

    def __init__(self, metrics: dict[str, Any], values: tuple[str, ...]) -> None:
        self._metrics = metrics
        self._values = values
        self._children: dict[tuple[str, ...], Any] = {}

    def child(self, *key: str) -> Any:
        """The child of metric `key[0]` whose extra labels take the values `key[1:]`."""
        child = self._children.get(key)
        if child is None:
            child = self._metrics[key[0]].labels(*self._values, *key[1:])
            self._children[key] = child
        return child


class _ScrapeTimeCounters(Collector):
    """Exports the counters kept outside the registry: telemetry drops and label overflow."""

    def __init__(
        self, drops: TelemetryDrops, request_models: ModelLabels, response_models: ModelLabels
    ) -> None:
        self._drops = drops
        self._request_models = request_models
        self._response_models = response_models

    def collect(self) -> Iterable[Metric]:
        """The current values, read at scrape time."""
        dropped = CounterMetricFamily(
            TELEMETRY_DROPPED.name, TELEMETRY_DROPPED.description, labels=TELEMETRY_DROPPED.labels
        )
        counts = {"pipeline": 0, **self._drops.snapshot()}
        for sink, count in sorted(counts.items()):
            dropped.add_metric([sink], count)
        overflow = CounterMetricFamily(
            LABEL_OVERFLOW.name, LABEL_OVERFLOW.description, labels=LABEL_OVERFLOW.labels
        )
        overflow.add_metric(["gen_ai_request_model"], self._request_models.overflowed)
        overflow.add_metric(["gen_ai_response_model"], self._response_models.overflowed)
        return [dropped, overflow]


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
    """A pipeline sink that keeps the metrics in its own registry and renders /metrics."""

    name = "prometheus"

    def __init__(
        self,
        telemetry: TelemetryConfig,
        drops: TelemetryDrops,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self.request_models = ModelLabels(telemetry.max_model_labels)
        self.response_models = ModelLabels(telemetry.max_model_labels)
        self._drops = drops
        self._metrics: dict[str, Any] = {
            metric.name: register(metric, self.registry)
            for metric in METRICS
            if not metric.collected
        }
        self.registry.register(
            _ScrapeTimeCounters(drops, self.request_models, self.response_models)
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._label_sets: dict[tuple[str, ...], _LabelSet] = {}
        # Bounded by configuration: operations, providers and upstreams are fixed sets.
        self._in_flight: dict[tuple[str, str, str], Any] = {}

    def _in_flight_child(self, record: CallRecord) -> Any:
        key = (record.request.operation, record.provider_name, record.upstream)
        child = self._in_flight.get(key)
        if child is None:
            child = self._in_flight[key] = self._metrics[IN_FLIGHT.name].labels(*key)
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
            label_set = self._label_sets[values] = _LabelSet(self._metrics, values)
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
        self._drops.add("pipeline", 1)
        self._in_flight_child(record).dec()

    def close(self) -> None:
        """Nothing to flush: the registry lives as long as the sink."""

    def render(self, accept: str) -> tuple[bytes, str]:
        """The /metrics body and its content type; OpenMetrics when `accept` asks for it."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
