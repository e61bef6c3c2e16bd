"""The one table of conventions: every metric the sidecar exports, per convention generation.

An `Instrument` is one metric: its OpenTelemetry name, type, unit, buckets and attributes;
its Prometheus name and labels are derived from those by the usual OTel→Prometheus rules
(`prometheus_name`), never typed twice. A `Recording` says which calls record a GenAI
instrument in which generation, and what they record. The GenAI conventions come in two
generations (`V1_41`, `GENAI`); `OTEL_SEMCONV_STABILITY_OPT_IN` (or
`telemetry.semconv_stability_opt_in`) picks one or both (`generations_for`). The sidecar's
own `model_sidecar_*` metrics are the same in every mode.

This table drives the registry (registry.py), the Prometheus sink (prometheus.py), OTLP
metrics (otlp_metrics.py), span attribute keys (span_attributes.py), docs/metrics.md
(metrics_doc.py), the dashboards (dashboards/) and the alert rules (alerts/).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"

# OTel units that become a Prometheus name suffix; annotations (`{token}`) and `1` add none.
UNIT_SUFFIXES = {"s": "seconds", "USD": "usd"}


def prometheus_name(otel_name: str, kind: str, unit: str) -> str:
    """The Prometheus name of an OTel instrument: dots become underscores, the unit's suffix
    is appended unless the name already ends with it, and counters end in `_total`."""
    name = otel_name.replace(".", "_")
    suffix = UNIT_SUFFIXES.get(unit)
    if suffix and not name.endswith(f"_{suffix}"):
        name = f"{name}_{suffix}"
    return f"{name}_total" if kind == COUNTER else name


# The client duration boundaries both generations give for durations, time to first chunk
# and time per output chunk (0.01 s doubling to 81.92 s).
CLIENT_DURATION_BUCKETS = tuple(round(0.01 * 2**power, 2) for power in range(14))
# Durations and time to first chunk: extended to 600 s, so p99 is never capped.
DURATION_BUCKETS = (*CLIENT_DURATION_BUCKETS, 163.84, 327.68, 600.0)
# Token boundaries of both generations: powers of 4 from 1 to 4**13.
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
# Realtime sessions last seconds (a refused handshake) to an hour or more (a voice call).
SESSION_BUCKETS = (
    0.1, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Label:
    """A Prometheus label, the OTLP attribute it is, and what its values mean."""

    name: str
    attribute: str
    meaning: str


def _labels(*rows: tuple[str, str, str]) -> dict[str, Label]:
    return {name: Label(name, attribute, meaning) for name, attribute, meaning in rows}


# Semconv attributes keep their keys over OTLP; the sidecar's own labels keep their names,
# so a Collector exporting to Prometheus gives back exactly the /metrics labels.
LABELS = _labels(
    ("gen_ai_operation_name", "gen_ai.operation.name",
     "`chat`, `text_completion`, `embeddings`, `generate_content`, `other`"),
    (
        "gen_ai_provider_name",
        "gen_ai.provider.name",
        "`openai`, `anthropic`, `gcp.gemini`, `azure.ai.openai`, `gcp.vertex_ai`, `ollama`, "
        "`aws.bedrock`, or an upstream's configured `provider` (e.g. `groq`, `deepseek`, "
        "`mistral_ai`, `x_ai`, `perplexity`)",
    ),
    ("gen_ai_request_model", "gen_ai.request.model",
     "model the app asked for; empty when none; `other` past the cap"),
    ("gen_ai_response_model", "gen_ai.response.model",
     "model the provider named in its answer; empty when none; `other` past the cap"),
    ("upstream", "upstream", "name of the configured upstream the call went to"),
    ("experiment", "experiment", "experiment the call took part in; empty when none"),
    ("variant", "variant",
     "experiment arm: `control`, `candidate` (split) or `shadow` (shadow copies); with several "
     "candidates `candidate-1`, `candidate-2`, … or the configured name; empty when none"),
    ("error_type", "error.type",
     "empty on success, else the upstream HTTP status (e.g. `429`) or `timeout`, "
     "`connection_error`, `client_cancelled`, `stream_interrupted`; Realtime sessions also the "
     "code of an abnormal Close frame (e.g. `1011`, `4xxx`); Realtime `error` events: OpenAI's "
     "error type (e.g. `invalid_request_error`) or `other`"),
    ("outcome", "outcome",
     "calls: `ok`, `upstream_error` (status >= 400), `timeout`, `connection_error`, "
     "`client_cancelled`, `stream_interrupted`; feedback: `accepted`, `edited`, `rejected`, "
     "`hallucination`"),
    ("http_status_code", "http_status_code",
     "upstream HTTP status; empty when no status arrived"),
    ("gen_ai_token_type", "gen_ai.token.type",
     "`input`, `output` (histogram); counter also `cache_read`, `cache_creation`, `reasoning`, "
     "and the audio among them: `input_audio`, `output_audio`, `cache_read_audio`"),
    ("gen_ai_token_modality", "gen_ai.token.modality",
     "`unknown`: the sidecar does not split usage by modality (providers report totals)"),
    ("source", "source",
     "`client` (calls the app's SDK sent as a retry), `sidecar` (the sidecar's own retry "
     "attempts)"),
    ("reason", "reason",
     "retries: empty for client retries, else the failed attempt's upstream status (e.g. "
     "`503`) or `connection_error`; stop-loss trips: `latency`, `errors`, `cost`, "
     "`low_confidence`; shadow skips: `concurrency`, `rate`; rollout transitions: `start`, "
     "`gates_passed`, `fleet`, the failed gate (`errors`, `latency`, `ttft`, `cost`, "
     "`low_confidence`, `feedback`), or an admin action (`pause`, `resume`, `promote`, `abort`)"),
    ("side", "side", "`control` or `shadow`: which call of a shadow pair"),
    ("agreement", "agreement",
     "`same` (identical output text and tool calls), `different`, `shadow_failed` / "
     "`control_failed` (that call did not end ok; no deltas recorded)"),
    ("result", "result",
     "`same` (a repeated deterministic request got its earlier output), `different`"),
    ("sink", "sink",
     "`pipeline` (finished calls dropped before any sink saw them), or a sink's name"),
    ("label", "label", "`gen_ai_request_model`, `gen_ai_response_model`"),
    ("modality", "modality", "`text` or `audio`: the kind of a Realtime response's output delta"),
    # Staged rollouts (#18) and silent model changes.
    ("state", "state",
     "rollout state: `pending`, `step_<percent>` (e.g. `step_25`), `promoted`, `rolled_back`, "
     "`paused`"),
    ("from_state", "from_state", "rollout state before a transition (values as `state`)"),
    ("to_state", "to_state", "rollout state after a transition (values as `state`)"),
    ("gate", "gate",
     "rollout gate: `errors`, `latency`, `ttft`, `cost`, `low_confidence`, `feedback`"),
    ("system_fingerprint", "openai.response.system_fingerprint",
     "backend fingerprint the provider returned (OpenAI `system_fingerprint`); empty when none"),
)  # fmt: skip

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
# What a Realtime session is known by (its responses carry the common labels).
SESSION_LABELS = ("gen_ai_provider_name", "gen_ai_request_model", "upstream")
# The only modality the sidecar reports (see `gen_ai_token_modality`).
UNKNOWN_MODALITY = "unknown"


@dataclass(frozen=True, slots=True)
class Instrument:
    """One exported metric. `name` is its Prometheus name, derived from the rest."""

    otel_name: str
    kind: str
    unit: str
    description: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    # Computed at scrape time from shared state rather than updated per call.
    collected: bool = False
    # Observations of sampled calls carry their trace id (OpenMetrics exemplars).
    exemplars: bool = False
    name: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", prometheus_name(self.otel_name, self.kind, self.unit))
        unknown = [label for label in self.labels if label not in LABELS]
        if unknown:
            raise ValueError(f"{self.otel_name}: labels not in LABELS: {unknown}")

    @property
    def attributes(self) -> tuple[str, ...]:
        """The OTLP attribute keys of the labels, in order."""
        return tuple(LABELS[label].attribute for label in self.labels)


# Generations -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Generation:
    """One generation of the GenAI conventions: which release, read at which commit."""

    key: str
    title: str
    source: str


V1_41 = Generation(
    "v1.41",
    "OpenTelemetry semantic conventions v1.41.0 (GenAI)",
    "open-telemetry/semantic-conventions tag v1.41.0, commit "
    "e018fe6f91862f5ed63c082f87697cddac596784 (model/gen-ai, docs/gen-ai)",
)
GENAI = Generation(
    "genai",
    "OpenTelemetry GenAI semantic conventions v0.1.0 (open-telemetry/semantic-conventions-genai)",
    "the v0.1.0 contents as read at these commits of open-telemetry/semantic-conventions-genai "
    "(the tag itself could not be fetched where this was built; re-check against it): "
    "docs/gen-ai/client-inference.md ac48b1f9df15fdf281b96cccf15eb707e1fc1868, "
    "docs/gen-ai/client-embeddings.md and changelog.d/+embeddings.breaking.md "
    "88eccb155ca7d6984826da1f4b1c08ee916e0f49, model/gen-ai/token-metrics.yaml "
    "066d4a7f356f8600de6f10c42874626ab88692fb (#536) and "
    "fe1756a23766510d9d3e4a1305598384a4bccc9f (#530), "
    "docs/gen-ai/non-normative/migration.md 32c328e85013588c6fe32ebc30934ab5b1752b6a",
)
GENERATIONS = (V1_41, GENAI)

OPT_IN_VARIABLE = "OTEL_SEMCONV_STABILITY_OPT_IN"
LATEST_OPT_IN = "gen_ai_latest_experimental"
DUP_OPT_IN = "gen_ai_latest_experimental/dup"
# Opt-in value (as in the variable or the config key) → the generations it emits.
MODES: Mapping[str, tuple[Generation, ...]] = {
    "": (V1_41,),
    LATEST_OPT_IN: (GENAI,),
    DUP_OPT_IN: (V1_41, GENAI),
}


def opt_in_value(variable: str | None) -> str | None:
    """The GenAI value in an `OTEL_SEMCONV_STABILITY_OPT_IN` list (comma-separated, other
    categories ignored; `/dup` wins over the plain value), or None when it names none."""
    values = {item.strip() for item in (variable or "").split(",")}
    for value in (DUP_OPT_IN, LATEST_OPT_IN):
        if value in values:
            return value
    return None


def generations_for(variable: str | None, configured: str = "") -> tuple[Generation, ...]:
    """The generations to emit: the variable's GenAI value wins, else the config key's."""
    value = opt_in_value(variable)
    return MODES[configured if value is None else value]


# Which calls record what -------------------------------------------------------------------

# What a recording observes of a call (the Prometheus sink implements each once).
DURATION = "duration"  # the call's duration, by error type
FIRST_CHUNK = "first_chunk"  # time to the first chunk of a stream
CHUNK_GAPS = "chunk_gaps"  # the time between consecutive chunks of a stream
TOKENS_BY_TYPE = "tokens_by_type"  # reported input and output tokens, by gen_ai_token_type
USAGE = "usage"  # one token count (`token`), 0 when not reported, on every call
PER_OPERATION = "per_operation"  # one reported token count (`token`), calls that ended ok

# Token counts a recording can read: a CallRecord field each (cache_write is what the
# providers call cache creation).
TOKEN_FIELDS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_tokens",
    "cache_write": "cache_creation_tokens",
    "reasoning": "reasoning_tokens",
}

INFERENCE_OPERATIONS = frozenset(("chat", "text_completion", "generate_content"))
EMBEDDINGS_OPERATIONS = frozenset(("embeddings",))


@dataclass(frozen=True, slots=True)
class Operations:
    """The operations a recording applies to: `only` these (empty: all), minus `excluded`."""

    only: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()

    def __contains__(self, operation: object) -> bool:
        return (not self.only or operation in self.only) and operation not in self.excluded

    def describe(self) -> str:
        """For the reference: which operations."""
        if self.only:
            return ", ".join(f"`{name}`" for name in sorted(self.only))
        if self.excluded:
            return "every operation but " + ", ".join(f"`{name}`" for name in sorted(self.excluded))
        return "every operation"


ALL_OPERATIONS = Operations()
INFERENCE = Operations(only=INFERENCE_OPERATIONS)
EMBEDDINGS = Operations(only=EMBEDDINGS_OPERATIONS)
NOT_INFERENCE_OR_EMBEDDINGS = Operations(excluded=INFERENCE_OPERATIONS | EMBEDDINGS_OPERATIONS)


@dataclass(frozen=True, slots=True)
class Recording:
    """A generation's rule: calls of `operations` record `measure` into `instrument`."""

    generation: Generation
    instrument: Instrument
    measure: str
    operations: Operations = ALL_OPERATIONS
    token: str = ""

    def describe(self) -> str:
        """When the instrument is recorded, for the reference."""
        what = {
            DURATION: "every call, failed ones too (with `error_type`)",
            FIRST_CHUNK: "streaming calls that received a chunk",
            CHUNK_GAPS: "streaming calls, once per chunk after the first",
            TOKENS_BY_TYPE: "calls whose provider reported usage, by token type",
            USAGE: "every call, failed ones too: the reported count, else 0",
            PER_OPERATION: "calls that ended ok and reported the count",
        }[self.measure]
        return f"{self.operations.describe()}: {what}"


# GenAI instruments --------------------------------------------------------------------------

# Shared by both generations: v1.41 records it for every call, GENAI for operations that are
# neither inference nor embeddings. In `dup` mode a call records it once.
OPERATION_DURATION = Instrument(
    "gen_ai.client.operation.duration", HISTOGRAM, "s",
    "GenAI operation duration: from the request's arrival to the last byte forwarded to the app.",
    (*COMMON_LABELS, "error_type"), DURATION_BUCKETS, exemplars=True,
)  # fmt: skip
TIME_TO_FIRST_CHUNK = Instrument(
    "gen_ai.client.operation.time_to_first_chunk", HISTOGRAM, "s",
    "Time to receive the first chunk of a streaming response, from the request's arrival. "
    "Streaming calls only.",
    COMMON_LABELS, DURATION_BUCKETS, exemplars=True,
)  # fmt: skip
TIME_PER_OUTPUT_CHUNK = Instrument(
    "gen_ai.client.operation.time_per_output_chunk", HISTOGRAM, "s",
    "Time per output chunk, recorded for each chunk after the first one, from the end of the "
    "previous chunk to the end of the current one. Streaming calls only.",
    COMMON_LABELS, CLIENT_DURATION_BUCKETS,
)  # fmt: skip
TOKEN_USAGE = Instrument(
    "gen_ai.client.token.usage", HISTOGRAM, "{token}",
    "Number of input and output tokens used, as reported by the provider (never estimated). "
    "Input includes cached tokens, output includes reasoning tokens.",
    (*COMMON_LABELS, "gen_ai_token_type"), TOKEN_BUCKETS,
)  # fmt: skip

INFERENCE_DURATION = Instrument(
    "gen_ai.client.inference.duration", HISTOGRAM, "s",
    "GenAI inference duration (chat, text completion, generate content): from the request's "
    "arrival to the last byte forwarded to the app.",
    (*COMMON_LABELS, "error_type"), DURATION_BUCKETS, exemplars=True,
)  # fmt: skip
EMBEDDINGS_DURATION = Instrument(
    "gen_ai.client.embeddings.duration", HISTOGRAM, "s",
    "GenAI embeddings duration: from the request's arrival to the last byte forwarded to the app.",
    (*COMMON_LABELS, "error_type"), DURATION_BUCKETS, exemplars=True,
)  # fmt: skip
INFERENCE_TIME_TO_FIRST_CHUNK = Instrument(
    "gen_ai.client.inference.time_to_first_chunk", HISTOGRAM, "s",
    "Time to receive the first chunk of a streaming inference response, from the request's "
    "arrival. Streaming calls only.",
    COMMON_LABELS, DURATION_BUCKETS, exemplars=True,
)  # fmt: skip
INFERENCE_TIME_PER_OUTPUT_CHUNK = Instrument(
    "gen_ai.client.inference.time_per_output_chunk", HISTOGRAM, "s",
    "Time per output chunk of a streaming inference response, recorded for each chunk after the "
    "first one, from the end of the previous chunk to the end of the current one.",
    COMMON_LABELS, CLIENT_DURATION_BUCKETS,
)  # fmt: skip


def _usage(token: str, brief: str) -> Instrument:
    direction = "input" if token in ("input", "cache_read", "cache_write") else "output"
    otel = f"gen_ai.client.inference.usage.{token}_tokens"
    if token not in ("input", "output"):
        otel = f"gen_ai.client.inference.usage.{token}.{direction}_tokens"
    return Instrument(
        otel, COUNTER, "{token}",
        f"{brief} Recorded for every inference call, failed ones too (0, modality `unknown`, "
        "when no usage was reported).",
        (*COMMON_LABELS, "gen_ai_token_modality"),
    )  # fmt: skip


USAGE_INPUT = _usage("input", "Input (prompt) tokens used, including cached tokens.")
USAGE_OUTPUT = _usage("output", "Output (completion) tokens used, including reasoning tokens.")
USAGE_CACHE_READ = _usage("cache_read", "Input tokens served from a provider-managed cache.")
USAGE_CACHE_WRITE = _usage(
    "cache_write", "Input tokens written to a provider-managed cache (cache creation)."
)
USAGE_REASONING = _usage("reasoning", "Output tokens used for reasoning.")
OPERATION_INPUT_TOKENS = Instrument(
    "gen_ai.client.inference.operation.input_tokens", HISTOGRAM, "{token}",
    "Input tokens per inference call that ended ok, as the provider reported them.",
    COMMON_LABELS, TOKEN_BUCKETS,
)  # fmt: skip
OPERATION_OUTPUT_TOKENS = Instrument(
    "gen_ai.client.inference.operation.output_tokens", HISTOGRAM, "{token}",
    "Output tokens per inference call that ended ok, as the provider reported them.",
    COMMON_LABELS, TOKEN_BUCKETS,
)  # fmt: skip
EMBEDDINGS_INPUT_TOKENS = Instrument(
    "gen_ai.client.embeddings.operation.input_tokens", HISTOGRAM, "{token}",
    "Input tokens per embeddings call that ended ok, as the provider reported them.",
    COMMON_LABELS, TOKEN_BUCKETS,
)  # fmt: skip

RECORDINGS = (
    Recording(V1_41, OPERATION_DURATION, DURATION),
    Recording(V1_41, TIME_TO_FIRST_CHUNK, FIRST_CHUNK),
    Recording(V1_41, TIME_PER_OUTPUT_CHUNK, CHUNK_GAPS),
    Recording(V1_41, TOKEN_USAGE, TOKENS_BY_TYPE),
    Recording(GENAI, INFERENCE_DURATION, DURATION, INFERENCE),
    Recording(GENAI, EMBEDDINGS_DURATION, DURATION, EMBEDDINGS),
    Recording(GENAI, OPERATION_DURATION, DURATION, NOT_INFERENCE_OR_EMBEDDINGS),
    Recording(GENAI, INFERENCE_TIME_TO_FIRST_CHUNK, FIRST_CHUNK, INFERENCE),
    Recording(GENAI, INFERENCE_TIME_PER_OUTPUT_CHUNK, CHUNK_GAPS, INFERENCE),
    Recording(GENAI, USAGE_INPUT, USAGE, INFERENCE, "input"),
    Recording(GENAI, USAGE_OUTPUT, USAGE, INFERENCE, "output"),
    Recording(GENAI, USAGE_CACHE_READ, USAGE, INFERENCE, "cache_read"),
    Recording(GENAI, USAGE_CACHE_WRITE, USAGE, INFERENCE, "cache_write"),
    Recording(GENAI, USAGE_REASONING, USAGE, INFERENCE, "reasoning"),
    Recording(GENAI, OPERATION_INPUT_TOKENS, PER_OPERATION, INFERENCE, "input"),
    Recording(GENAI, OPERATION_OUTPUT_TOKENS, PER_OPERATION, INFERENCE, "output"),
    Recording(GENAI, EMBEDDINGS_INPUT_TOKENS, PER_OPERATION, EMBEDDINGS, "input"),
)


def recordings_for(generations: Iterable[Generation]) -> tuple[Recording, ...]:
    """The recordings of `generations`, in table order."""
    wanted = set(generations)
    return tuple(recording for recording in RECORDINGS if recording.generation in wanted)


def genai_instruments(generations: Iterable[Generation]) -> tuple[Instrument, ...]:
    """The GenAI instruments `generations` record, each once, in table order."""
    return tuple(dict.fromkeys(recording.instrument for recording in recordings_for(generations)))


@dataclass(frozen=True, slots=True)
class Alternatives:
    """One measurement that different generations name differently: the Prometheus names to
    read, first match wins (a query written once reads whichever generation is present)."""

    names: tuple[str, ...]


# A call's duration: every generation's duration histogram.
CALL_DURATION = Alternatives(
    (INFERENCE_DURATION.name, EMBEDDINGS_DURATION.name, OPERATION_DURATION.name)
)
# Time to the first chunk of a stream.
CALL_TIME_TO_FIRST_CHUNK = Alternatives(
    (INFERENCE_TIME_TO_FIRST_CHUNK.name, TIME_TO_FIRST_CHUNK.name)
)
# Time between the chunks of a stream.
CALL_TIME_PER_OUTPUT_CHUNK = Alternatives(
    (INFERENCE_TIME_PER_OUTPUT_CHUNK.name, TIME_PER_OUTPUT_CHUNK.name)
)
ALTERNATIVES = (CALL_DURATION, CALL_TIME_TO_FIRST_CHUNK, CALL_TIME_PER_OUTPUT_CHUNK)


# The sidecar's own instruments, the same in every mode ---------------------------------------

REQUESTS = Instrument(
    "model_sidecar.requests", COUNTER, "{call}",
    "Calls through the sidecar, by outcome and upstream HTTP status.",
    (*COMMON_LABELS, "outcome", "http_status_code"),
)  # fmt: skip
TOKENS = Instrument(
    "model_sidecar.tokens", COUNTER, "{token}",
    "Tokens reported by the provider; input and output equal the gen_ai_client_token_usage sums, "
    "cache_read and cache_creation are part of input, reasoning is part of output.",
    (*COMMON_LABELS, "gen_ai_token_type"),
)  # fmt: skip
COST = Instrument(
    "model_sidecar.cost", COUNTER, "USD",
    "Estimated cost of the calls in US dollars (genai-prices data plus operator overrides).",
    COMMON_LABELS,
)  # fmt: skip
COST_UNKNOWN = Instrument(
    "model_sidecar.cost_unknown", COUNTER, "{call}",
    "Calls that reported token usage but could not be priced (unknown model); they add nothing "
    "to model_sidecar_cost_usd_total.",
    COMMON_LABELS,
)  # fmt: skip
RETRIES = Instrument(
    "model_sidecar.retries", COUNTER, "{retry}",
    "Retries: source=client counts calls the app sent as a retry (x-stainless-retry-count > 0, "
    "or an Idempotency-Key seen within the window); source=sidecar counts the sidecar's own "
    "extra attempts, by the reason the previous attempt failed.",
    (*COMMON_LABELS, "source", "reason"),
)  # fmt: skip
CONFIDENCE = Instrument(
    "model_sidecar.confidence", HISTOGRAM, "1",
    "Confidence of the first choice (0 to 1) when it was measured: exp(mean token logprob), "
    "or the configured JSON output field or upstream header.",
    COMMON_LABELS, CONFIDENCE_BUCKETS,
)  # fmt: skip
LOW_CONFIDENCE = Instrument(
    "model_sidecar.low_confidence", COUNTER, "{call}",
    "Calls whose confidence was below confidence.threshold.",
    COMMON_LABELS,
)  # fmt: skip
REPEAT_OUTPUTS = Instrument(
    "model_sidecar.repeat_outputs", COUNTER, "{call}",
    "Repeats of a remembered temperature-0 or fixed-seed request, by whether the output "
    "(text and tool calls) matched the earlier one.",
    (*COMMON_LABELS, "result"),
)  # fmt: skip
OVERHEAD = Instrument(
    "model_sidecar.overhead", HISTOGRAM, "s",
    "Time spent in the sidecar itself: the call's duration minus time waiting on the upstream "
    "and on the app.",
    COMMON_LABELS, OVERHEAD_BUCKETS,
)  # fmt: skip
IN_FLIGHT = Instrument(
    "model_sidecar.in_flight_requests", GAUGE, "{call}",
    "Calls received and not yet finished. Labelled only with what is known when a call starts.",
    IN_FLIGHT_LABELS,
)  # fmt: skip
TELEMETRY_DROPPED = Instrument(
    "model_sidecar.telemetry_dropped", COUNTER, "{item}",
    "Telemetry dropped because a queue was full: sink=pipeline counts finished calls no sink "
    "saw; other sinks count their own items (e.g. spans).",
    ("sink",), collected=True,
)  # fmt: skip
LABEL_OVERFLOW = Instrument(
    "model_sidecar.label_overflow", COUNTER, "{call}",
    "Calls whose model label was replaced by `other` because the label already had "
    "telemetry.max_model_labels distinct values.",
    ("label",), collected=True,
)  # fmt: skip

SHADOW_LATENCY_DELTA = Instrument(
    "model_sidecar.shadow_latency_delta", HISTOGRAM, "s",
    "Per shadow pair: the shadow call's duration minus its control call's (negative when the "
    "candidate was faster). Pairs whose shadow failed are not observed.",
    ARM_LABELS, DELTA_SECONDS_BUCKETS,
)  # fmt: skip
SHADOW_TTFT_DELTA = Instrument(
    "model_sidecar.shadow_time_to_first_chunk_delta", HISTOGRAM, "s",
    "Per streaming shadow pair: the shadow's time to first chunk minus the control's.",
    ARM_LABELS, DELTA_SECONDS_BUCKETS,
)  # fmt: skip
SHADOW_TOKEN_DELTA = Instrument(
    "model_sidecar.shadow_token_delta", HISTOGRAM, "{token}",
    "Per shadow pair: the shadow's reported tokens minus the control's, by token type "
    "(input, output); pairs where either side reported none are not observed.",
    (*ARM_LABELS, "gen_ai_token_type"), DELTA_TOKEN_BUCKETS,
)  # fmt: skip
SHADOW_COST_DELTA = Instrument(
    "model_sidecar.shadow_cost_delta", HISTOGRAM, "USD",
    "Per shadow pair where both calls were priced: the shadow's cost minus the control's.",
    ARM_LABELS, DELTA_COST_BUCKETS,
)  # fmt: skip
SHADOW_LENGTH_RATIO = Instrument(
    "model_sidecar.shadow_output_length_ratio", HISTOGRAM, "1",
    "Per shadow pair with a non-empty control output: shadow output characters / control "
    "output characters.",
    ARM_LABELS, LENGTH_RATIO_BUCKETS,
)  # fmt: skip
# Histograms with negative buckets carry no _sum (OpenMetrics): these sum each side of the
# completed pairs, so mean deltas are exact (shadow minus control, over the pairs counted).
SHADOW_PAIRED_DURATION = Instrument(
    "model_sidecar.shadow_paired_duration", COUNTER, "s",
    "Sum of call durations over completed shadow pairs, per side (`control`, `shadow`): the "
    "mean latency delta is the difference over the pairs' count.",
    (*ARM_LABELS, "side"),
)  # fmt: skip
SHADOW_PAIRED_TTFT = Instrument(
    "model_sidecar.shadow_paired_time_to_first_chunk", COUNTER, "s",
    "Sum of times to first chunk over completed streaming shadow pairs, per side.",
    (*ARM_LABELS, "side"),
)  # fmt: skip
SHADOW_PAIRED_TOKENS = Instrument(
    "model_sidecar.shadow_paired_tokens", COUNTER, "{token}",
    "Sum of reported tokens over completed shadow pairs where both sides reported them, per "
    "side and token type (input, output).",
    (*ARM_LABELS, "side", "gen_ai_token_type"),
)  # fmt: skip
SHADOW_PAIRED_COST = Instrument(
    "model_sidecar.shadow_paired_cost", COUNTER, "USD",
    "Sum of cost over completed shadow pairs where both sides were priced, per side.",
    (*ARM_LABELS, "side"),
)  # fmt: skip
SHADOW_PAIRS = Instrument(
    "model_sidecar.shadow_pairs", COUNTER, "{pair}",
    "Shadow pairs completed, by whether the shadow's output agreed exactly with the control's.",
    (*ARM_LABELS, "agreement"),
)  # fmt: skip
SHADOW_SKIPPED = Instrument(
    "model_sidecar.shadow_skipped", COUNTER, "{call}",
    "Calls not copied to a shadow arm because its concurrency or rate limit was reached.",
    (*ARM_LABELS, "reason"),
)  # fmt: skip
STOPLOSS_TRIPS = Instrument(
    "model_sidecar.stoploss_trips", COUNTER, "{trip}",
    "Stop-loss trips: a candidate arm was rolled back to weight 0, by the limit it crossed. "
    "Every configured reason of every experiment with a stop-loss starts at 0.",
    ("experiment", "reason"),
)  # fmt: skip
EXPERIMENT_ACTIVE = Instrument(
    "model_sidecar.experiment_active", GAUGE, "1",
    "1 while at least one candidate arm of the experiment takes traffic, 0 once every "
    "candidate was rolled back by the stop-loss (until a config change or an admin resume).",
    ("experiment",),
)  # fmt: skip
FEEDBACK = Instrument(
    "model_sidecar.feedback", COUNTER, "{feedback}",
    "Feedback the app posted to /_sidecar/feedback about a call, by outcome.",
    (*CALL_ARM_LABELS, "outcome"),
)  # fmt: skip
EDIT_SECONDS = Instrument(
    "model_sidecar.edit", HISTOGRAM, "s",
    "Human edit time reported with feedback (`edit_seconds`), per model and arm.",
    CALL_ARM_LABELS, EDIT_BUCKETS,
)  # fmt: skip
FEEDBACK_SCORE = Instrument(
    "model_sidecar.feedback_score", HISTOGRAM, "1",
    "Scores (0 to 1) reported with feedback, per model and arm.",
    CALL_ARM_LABELS, CONFIDENCE_BUCKETS,
)  # fmt: skip
AUDIT_SAMPLES = Instrument(
    "model_sidecar.audit_samples", COUNTER, "{call}",
    "Calls written to the audit sample file (audit.sample_rate).",
    CALL_ARM_LABELS,
)  # fmt: skip

REALTIME_SESSIONS = Instrument(
    "model_sidecar.realtime.sessions", GAUGE, "{session}",
    "Realtime (WebSocket) sessions open now: upgraded by the upstream and not yet closed.",
    SESSION_LABELS,
)  # fmt: skip
REALTIME_SESSION_DURATION = Instrument(
    "model_sidecar.realtime.session.duration", HISTOGRAM, "s",
    "Realtime session duration, from the upgrade request to the close of both connections, by "
    "how it ended (`error_type`: empty for a normal close, else the code of an abnormal Close "
    "frame, the upstream's refusal status or the outcome). Refused handshakes count too.",
    (*SESSION_LABELS, "error_type"), SESSION_BUCKETS,
)  # fmt: skip
REALTIME_SESSION_COST = Instrument(
    "model_sidecar.realtime.session.cost", COUNTER, "USD",
    "Estimated cost of the Realtime sessions that ended: their responses' usage, text and audio "
    "tokens each at their own price (genai-prices data plus operator overrides).",
    SESSION_LABELS,
)  # fmt: skip
REALTIME_FIRST_OUTPUT = Instrument(
    "model_sidecar.realtime.time_to_first_output", HISTOGRAM, "s",
    "Per Realtime response: time from its start (`response.create`, or the end of the user's "
    "speech when the server's turn detection starts it) to its first output delta of each "
    "modality (`text`, `audio`).",
    (*COMMON_LABELS, "modality"), DURATION_BUCKETS, exemplars=True,
)  # fmt: skip
REALTIME_ERRORS = Instrument(
    "model_sidecar.realtime.errors", COUNTER, "{event}",
    "`error` events the upstream sent in Realtime sessions, by error type.",
    (*SESSION_LABELS, "error_type"),
)  # fmt: skip
# Staged rollouts (#18) and silent model changes -----------------------------------------
ROLLOUT_WEIGHT = Instrument(
    "model_sidecar.rollout_weight", GAUGE, "%",
    "Percent of the experiment's matching calls this sidecar sends to the rollout's candidate "
    "now (the current step; 0 pending or rolled back, 100 promoted).",
    ("experiment",),
)  # fmt: skip
ROLLOUT_STATE = Instrument(
    "model_sidecar.rollout_state", GAUGE, "1",
    "1 for the rollout's current state, 0 for the states it has left (a joining sidecar reads "
    "the fleet's state from these).",
    ("experiment", "state"),
)  # fmt: skip
ROLLOUT_TRANSITIONS = Instrument(
    "model_sidecar.rollout_transitions", COUNTER, "{transition}",
    "Rollout state changes, by the states and the reason (a gate, the fleet, an admin action).",
    ("experiment", "from_state", "to_state", "reason"),
)  # fmt: skip
ROLLOUT_DECISION_ERRORS = Instrument(
    "model_sidecar.rollout_decision_errors", COUNTER, "{evaluation}",
    "Rollout evaluations that could not read the fleet's verdict (Prometheus unreachable or a "
    "query failed): the rollout held its step. Starts at 0.",
    ("experiment",),
)  # fmt: skip
ROLLOUT_STEP_STARTED = Instrument(
    "model_sidecar.rollout_step_started_timestamp", GAUGE, "s",
    "Unix time the rollout's current state (step) began on this sidecar (RolloutStuck).",
    ("experiment",),
)  # fmt: skip
ROLLOUT_STEP_MIN_DURATION = Instrument(
    "model_sidecar.rollout_step_min_duration", GAUGE, "s",
    "The rollout's configured minimum time per step (rollout.min_duration).",
    ("experiment",),
)  # fmt: skip
ROLLOUT_GATE_VALUE = Instrument(
    "model_sidecar.rollout_gate_value", GAUGE, "1",
    "A rollout gate's value at its last evaluation: the candidate-minus-control difference "
    "(errors, low_confidence, feedback) or candidate/control ratio (latency, ttft, cost); absent "
    "while not measured.",
    ("experiment", "gate"),
)  # fmt: skip
ROLLOUT_GATE_LIMIT = Instrument(
    "model_sidecar.rollout_gate_limit", GAUGE, "1",
    "A rollout gate's configured limit (the stop_loss limit it is judged against).",
    ("experiment", "gate"),
)  # fmt: skip
MODEL_CHANGES = Instrument(
    "model_sidecar.model_change", COUNTER, "{change}",
    "Changes of the response model or system_fingerprint the provider returned for a requested "
    "model (a silent snapshot swap behind an alias), counted once per pair not served before "
    "(a backend alternating between pairs it already served is not counted again).",
    ("gen_ai_request_model",),
)  # fmt: skip
MODEL_INFO = Instrument(
    "model_sidecar.model_info", GAUGE, "1",
    "1 for the response model and system_fingerprint the provider returns now for a requested "
    "model (info-style; the previous pair's series is removed on a change).",
    ("gen_ai_request_model", "gen_ai_response_model", "system_fingerprint"),
)  # fmt: skip
ROLLOUT_METRICS = (
    ROLLOUT_WEIGHT,
    ROLLOUT_STATE,
    ROLLOUT_TRANSITIONS,
    ROLLOUT_DECISION_ERRORS,
    ROLLOUT_STEP_STARTED,
    ROLLOUT_STEP_MIN_DURATION,
    ROLLOUT_GATE_VALUE,
    ROLLOUT_GATE_LIMIT,
    MODEL_CHANGES,
    MODEL_INFO,
)

REALTIME_METRICS = (
    REALTIME_SESSIONS,
    REALTIME_SESSION_DURATION,
    REALTIME_SESSION_COST,
    REALTIME_FIRST_OUTPUT,
    REALTIME_ERRORS,
)

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

# Quota headroom and attribution (issue #21) ---------------------------------------------------

LABELS.update(
    _labels(
        (
            "kind",
            "kind",
            "quota window: `requests`, `tokens`, `input_tokens`, `output_tokens` (Anthropic)",
        ),
        (
            "attribution",
            "attribution",
            "value of the configured attribution header (e.g. a team): an allowed value, "
            "`other` (unknown or past `attribution.max_values`), `none` (header absent)",
        ),
    )
)
QUOTA_LABELS = ("upstream", "gen_ai_request_model", "kind")
RATELIMIT_LIMIT = Instrument(
    "model_sidecar.ratelimit.limit", GAUGE, "{unit}",
    "The provider's quota per window, from the last response's rate-limit headers (OpenAI, "
    "Azure and OpenAI-compatible `x-ratelimit-limit-*`, Anthropic `anthropic-ratelimit-*-limit`).",
    QUOTA_LABELS,
)  # fmt: skip
RATELIMIT_REMAINING = Instrument(
    "model_sidecar.ratelimit.remaining", GAUGE, "{unit}",
    "What is left of the provider's quota in the current window, from the last response's "
    "rate-limit headers.",
    QUOTA_LABELS,
)  # fmt: skip
RATELIMIT_RESET = Instrument(
    "model_sidecar.ratelimit.reset", GAUGE, "s",
    "Seconds until the provider's quota window resets, as of the last response (OpenAI-style "
    "durations such as `6m0s`, Anthropic RFC 3339 times).",
    QUOTA_LABELS,
)  # fmt: skip
RATELIMIT_HEADER_ERRORS = Instrument(
    "model_sidecar.ratelimit.header_errors", COUNTER, "{header}",
    "Rate-limit headers present but malformed: ignored and counted, never an error for the call.",
    ("upstream",),
)  # fmt: skip
ATTRIBUTION_LABELS = ("attribution", "gen_ai_provider_name", "gen_ai_request_model", "upstream")
ATTRIBUTION_REQUESTS = Instrument(
    "model_sidecar.attribution.requests", COUNTER, "{call}",
    "Calls by attribution value (attribution.header), by outcome and upstream HTTP status: "
    "model_sidecar_requests_total split by team or feature (only with attribution configured).",
    (*ATTRIBUTION_LABELS, "outcome", "http_status_code"),
)  # fmt: skip
ATTRIBUTION_TOKENS = Instrument(
    "model_sidecar.attribution.tokens", COUNTER, "{token}",
    "Tokens reported by the provider by attribution value: model_sidecar_tokens_total split "
    "by team or feature (only with attribution configured).",
    (*ATTRIBUTION_LABELS, "gen_ai_token_type"),
)  # fmt: skip
ATTRIBUTION_COST = Instrument(
    "model_sidecar.attribution.cost", COUNTER, "USD",
    "Estimated cost by attribution value: model_sidecar_cost_usd_total split by team or "
    "feature (only with attribution configured).",
    ATTRIBUTION_LABELS,
)  # fmt: skip
QUOTA_METRICS = (RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET, RATELIMIT_HEADER_ERRORS)
ATTRIBUTION_METRICS = (ATTRIBUTION_REQUESTS, ATTRIBUTION_TOKENS, ATTRIBUTION_COST)

# Every model_sidecar_* metric, in exposition order. A new one is a row above plus its name
# here (docs/metrics.md, the registry and OTLP metrics follow from the table).
SIDECAR_METRICS = (
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
    *REALTIME_METRICS,
    *QUOTA_METRICS,
    *ATTRIBUTION_METRICS,
    *ROLLOUT_METRICS,
)


def metrics_for(generations: Iterable[Generation]) -> tuple[Instrument, ...]:
    """Every metric a sidecar emitting `generations` exports, in exposition order."""
    return (*genai_instruments(generations), *SIDECAR_METRICS)


# Every metric some mode exports (the reference documents them all).
ALL_METRICS = metrics_for(GENERATIONS)
BY_NAME = {metric.name: metric for metric in ALL_METRICS}


# Span attributes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpanKeys:
    """The span attributes whose key or type a generation changed."""

    # Input tokens written to a provider-managed cache (what providers call cache creation).
    cache_write_tokens: str
    # The previous response a request continues (OpenAI Responses API); None: not defined.
    previous_response_id: str | None
    # `gen_ai.request.top_k` is a double in v1.41, an int in the genai release.
    top_k_is_int: bool


SPAN_KEYS: Mapping[Generation, SpanKeys] = {
    V1_41: SpanKeys("gen_ai.usage.cache_creation.input_tokens", None, top_k_is_int=False),
    GENAI: SpanKeys(
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.request.previous_response.id",
        top_k_is_int=True,
    ),
}
