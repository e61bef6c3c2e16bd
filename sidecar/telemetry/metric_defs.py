"""The metric definitions: one table (`METRICS`) of every exported metric and label.

It drives registration in sidecar/telemetry/registry.py and the generated reference in
docs/metrics.md (sidecar/telemetry/metrics_doc.py).
"""

from __future__ import annotations

from dataclasses import dataclass

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
# Shadow minus control, in seconds: symmetric around 0 (a candidate may be faster).
_DELTA_STEPS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DELTA_SECONDS_BUCKETS = (*(-step for step in reversed(_DELTA_STEPS)), 0.0, *_DELTA_STEPS)
_TOKEN_STEPS = (1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0)
DELTA_TOKEN_BUCKETS = (*(-step for step in reversed(_TOKEN_STEPS)), 0.0, *_TOKEN_STEPS)
_COST_STEPS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0)
DELTA_COST_BUCKETS = (*(-step for step in reversed(_COST_STEPS)), 0.0, *_COST_STEPS)
LENGTH_RATIO_BUCKETS = (0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.11, 1.25, 1.5, 2.0, 4.0)
EDIT_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

# What every label means, for the generated reference.
LABELS = {
    "gen_ai_operation_name": "`chat`, `text_completion`, `embeddings`, `generate_content`, `other`",
    "gen_ai_provider_name": "`openai`, `anthropic`, `gcp.gemini`, `azure.ai.openai`, "
    "`gcp.vertex_ai`, `ollama`, or an upstream's configured `provider` (e.g. `groq`, "
    "`deepseek`, `mistral_ai`, `x_ai`, `perplexity`)",
    "gen_ai_request_model": "model the app asked for; empty when none; `other` past the cap",
    "gen_ai_response_model": "model the provider named in its answer; empty when none; "
    "`other` past the cap",
    "upstream": "name of the configured upstream the call went to",
    "experiment": "experiment the call took part in; empty when none",
    "variant": "experiment arm: `control`, `candidate` (split) or `shadow` (shadow copies); "
    "with several candidates `candidate-1`, `candidate-2`, … or the configured name; empty "
    "when none",
    "error_type": "empty on success, else the upstream HTTP status (e.g. `429`) or `timeout`, "
    "`connection_error`, `client_cancelled`, `stream_interrupted`",
    "outcome": "calls: `ok`, `upstream_error` (status >= 400), `timeout`, `connection_error`, "
    "`client_cancelled`, `stream_interrupted`; feedback: `accepted`, `edited`, `rejected`, "
    "`hallucination`",
    "http_status_code": "upstream HTTP status; empty when no status arrived",
    "gen_ai_token_type": "`input`, `output` (histogram); counter also `cache_read`, "
    "`cache_creation`, `reasoning`",
    "source": "`client` (calls the app's SDK sent as a retry), `sidecar` (the sidecar's own "
    "retry attempts)",
    "reason": "retries: empty for client retries, else the failed attempt's upstream status "
    "(e.g. `503`) or `connection_error`; stop-loss trips: `latency`, `errors`, `cost`, "
    "`low_confidence`; shadow skips: `concurrency`, `rate`",
    "side": "`control` or `shadow`: which call of a shadow pair",
    "agreement": "`same` (identical output text and tool calls), `different`, "
    "`shadow_failed` / `control_failed` (that call did not end ok; no deltas recorded)",
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
# An experiment's arm.
ARM_LABELS = ("experiment", "variant")
# What a feedback or audit entry knows of its call.
CALL_ARM_LABELS = ("gen_ai_provider_name", "gen_ai_request_model", "experiment", "variant")


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

SHADOW_LATENCY_DELTA = MetricDef(
    "model_sidecar_shadow_latency_delta_seconds", HISTOGRAM, "s",
    "Per shadow pair: the shadow call's duration minus its control call's (negative when the "
    "candidate was faster). Pairs whose shadow failed are not observed.",
    ARM_LABELS, DELTA_SECONDS_BUCKETS,
)  # fmt: skip
SHADOW_TTFT_DELTA = MetricDef(
    "model_sidecar_shadow_time_to_first_chunk_delta_seconds", HISTOGRAM, "s",
    "Per streaming shadow pair: the shadow's time to first chunk minus the control's.",
    ARM_LABELS, DELTA_SECONDS_BUCKETS,
)  # fmt: skip
SHADOW_TOKEN_DELTA = MetricDef(
    "model_sidecar_shadow_token_delta", HISTOGRAM, "{token}",
    "Per shadow pair: the shadow's reported tokens minus the control's, by token type "
    "(input, output); pairs where either side reported none are not observed.",
    (*ARM_LABELS, "gen_ai_token_type"), DELTA_TOKEN_BUCKETS,
)  # fmt: skip
SHADOW_COST_DELTA = MetricDef(
    "model_sidecar_shadow_cost_delta_usd", HISTOGRAM, "USD",
    "Per shadow pair where both calls were priced: the shadow's cost minus the control's.",
    ARM_LABELS, DELTA_COST_BUCKETS,
)  # fmt: skip
SHADOW_LENGTH_RATIO = MetricDef(
    "model_sidecar_shadow_output_length_ratio", HISTOGRAM, "1",
    "Per shadow pair with a non-empty control output: shadow output characters / control "
    "output characters.",
    ARM_LABELS, LENGTH_RATIO_BUCKETS,
)  # fmt: skip
# Histograms with negative buckets carry no _sum (OpenMetrics): these sum each side of the
# completed pairs, so mean deltas are exact (shadow minus control, over the pairs counted).
SHADOW_PAIRED_DURATION = MetricDef(
    "model_sidecar_shadow_paired_duration_seconds_total", COUNTER, "s",
    "Sum of call durations over completed shadow pairs, per side (`control`, `shadow`): the "
    "mean latency delta is the difference over the pairs' count.",
    (*ARM_LABELS, "side"),
)  # fmt: skip
SHADOW_PAIRED_TTFT = MetricDef(
    "model_sidecar_shadow_paired_time_to_first_chunk_seconds_total", COUNTER, "s",
    "Sum of times to first chunk over completed streaming shadow pairs, per side.",
    (*ARM_LABELS, "side"),
)  # fmt: skip
SHADOW_PAIRED_TOKENS = MetricDef(
    "model_sidecar_shadow_paired_tokens_total", COUNTER, "{token}",
    "Sum of reported tokens over completed shadow pairs where both sides reported them, per "
    "side and token type (input, output).",
    (*ARM_LABELS, "side", "gen_ai_token_type"),
)  # fmt: skip
SHADOW_PAIRED_COST = MetricDef(
    "model_sidecar_shadow_paired_cost_usd_total", COUNTER, "USD",
    "Sum of cost over completed shadow pairs where both sides were priced, per side.",
    (*ARM_LABELS, "side"),
)  # fmt: skip
SHADOW_PAIRS = MetricDef(
    "model_sidecar_shadow_pairs_total", COUNTER, "{pair}",
    "Shadow pairs completed, by whether the shadow's output agreed exactly with the control's.",
    (*ARM_LABELS, "agreement"),
)  # fmt: skip
SHADOW_SKIPPED = MetricDef(
    "model_sidecar_shadow_skipped_total", COUNTER, "{call}",
    "Calls not copied to a shadow arm because its concurrency or rate limit was reached.",
    (*ARM_LABELS, "reason"),
)  # fmt: skip
STOPLOSS_TRIPS = MetricDef(
    "model_sidecar_stoploss_trips_total", COUNTER, "{trip}",
    "Stop-loss trips: a candidate arm was rolled back to weight 0, by the limit it crossed. "
    "Every configured reason of every experiment with a stop-loss starts at 0.",
    ("experiment", "reason"),
)  # fmt: skip
EXPERIMENT_ACTIVE = MetricDef(
    "model_sidecar_experiment_active", GAUGE, "1",
    "1 while at least one candidate arm of the experiment takes traffic, 0 once every "
    "candidate was rolled back by the stop-loss (until a config change or an admin resume).",
    ("experiment",),
)  # fmt: skip
FEEDBACK = MetricDef(
    "model_sidecar_feedback_total", COUNTER, "{feedback}",
    "Feedback the app posted to /_sidecar/feedback about a call, by outcome.",
    (*CALL_ARM_LABELS, "outcome"),
)  # fmt: skip
EDIT_SECONDS = MetricDef(
    "model_sidecar_edit_seconds", HISTOGRAM, "s",
    "Human edit time reported with feedback (`edit_seconds`), per model and arm.",
    CALL_ARM_LABELS, EDIT_BUCKETS,
)  # fmt: skip
FEEDBACK_SCORE = MetricDef(
    "model_sidecar_feedback_score", HISTOGRAM, "1",
    "Scores (0 to 1) reported with feedback, per model and arm.",
    CALL_ARM_LABELS, CONFIDENCE_BUCKETS,
)  # fmt: skip
AUDIT_SAMPLES = MetricDef(
    "model_sidecar_audit_samples_total", COUNTER, "{call}",
    "Calls written to the audit sample file (audit.sample_rate).",
    CALL_ARM_LABELS,
)  # fmt: skip

EXPERIMENT_METRICS = (
    SHADOW_LATENCY_DELTA,
    SHADOW_TTFT_DELTA,
    SHADOW_TOKEN_DELTA,
    SHADOW_COST_DELTA,
    SHADOW_LENGTH_RATIO,
    SHADOW_PAIRED_DURATION,
    SHADOW_PAIRED_TTFT,
    SHADOW_PAIRED_TOKENS,
    SHADOW_PAIRED_COST,
    SHADOW_PAIRS,
    SHADOW_SKIPPED,
    STOPLOSS_TRIPS,
    EXPERIMENT_ACTIVE,
    FEEDBACK,
    EDIT_SECONDS,
    FEEDBACK_SCORE,
    AUDIT_SAMPLES,
)

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
    *EXPERIMENT_METRICS,
)
