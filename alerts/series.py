"""The series the rules and dashboards read, named by the table of conventions
(sidecar/telemetry/conventions.py), never by hand; and the PromQL that reads a measurement
whichever GenAI convention generation the sidecars emit.

A measurement the generations name differently (`Alternatives`) is read as
`f(a) or f(b) or …`, newest name first: `or` keeps a series of the first name and drops the
same label set under a later one, so `dup` mode is not counted twice, and a fleet that mixes
modes is read whole.
"""

from __future__ import annotations

from sidecar.telemetry import conventions as c

REQUESTS = c.REQUESTS.name
TOKENS = c.TOKENS.name
COST = c.COST.name
COST_UNKNOWN = c.COST_UNKNOWN.name
RETRIES = c.RETRIES.name
CONFIDENCE = c.CONFIDENCE.name
LOW_CONFIDENCE = c.LOW_CONFIDENCE.name
REPEAT_OUTPUTS = c.REPEAT_OUTPUTS.name
OVERHEAD = c.OVERHEAD.name
IN_FLIGHT = c.IN_FLIGHT.name
TELEMETRY_DROPPED = c.TELEMETRY_DROPPED.name
LABEL_OVERFLOW = c.LABEL_OVERFLOW.name
FEEDBACK = c.FEEDBACK.name
EDIT_SECONDS = c.EDIT_SECONDS.name
SHADOW_PAIRS = c.SHADOW_PAIRS.name
SHADOW_LATENCY_DELTA = c.SHADOW_LATENCY_DELTA.name
SHADOW_TTFT_DELTA = c.SHADOW_TTFT_DELTA.name
SHADOW_COST_DELTA = c.SHADOW_COST_DELTA.name
SHADOW_PAIRED_DURATION = c.SHADOW_PAIRED_DURATION.name
SHADOW_PAIRED_TTFT = c.SHADOW_PAIRED_TTFT.name
SHADOW_PAIRED_TOKENS = c.SHADOW_PAIRED_TOKENS.name
SHADOW_PAIRED_COST = c.SHADOW_PAIRED_COST.name
STOPLOSS_TRIPS = c.STOPLOSS_TRIPS.name
EXPERIMENT_ACTIVE = c.EXPERIMENT_ACTIVE.name
REALTIME_SESSIONS = c.REALTIME_SESSIONS.name
REALTIME_SESSION_DURATION = c.REALTIME_SESSION_DURATION.name
REALTIME_SESSION_COST = c.REALTIME_SESSION_COST.name
REALTIME_FIRST_OUTPUT = c.REALTIME_FIRST_OUTPUT.name
REALTIME_ERRORS = c.REALTIME_ERRORS.name
ROLLOUT_WEIGHT = c.ROLLOUT_WEIGHT.name
ROLLOUT_STATE = c.ROLLOUT_STATE.name
ROLLOUT_TRANSITIONS = c.ROLLOUT_TRANSITIONS.name
ROLLOUT_DECISION_ERRORS = c.ROLLOUT_DECISION_ERRORS.name
ROLLOUT_STEP_STARTED = c.ROLLOUT_STEP_STARTED.name
ROLLOUT_STEP_MIN_DURATION = c.ROLLOUT_STEP_MIN_DURATION.name
ROLLOUT_GATE_VALUE = c.ROLLOUT_GATE_VALUE.name
ROLLOUT_GATE_LIMIT = c.ROLLOUT_GATE_LIMIT.name
MODEL_CHANGES = c.MODEL_CHANGES.name
MODEL_INFO = c.MODEL_INFO.name
# A call's duration and a stream's time to first chunk, in any generation.
DURATION = c.CALL_DURATION
FIRST_CHUNK = c.CALL_TIME_TO_FIRST_CHUNK
TIME_PER_CHUNK = c.CALL_TIME_PER_OUTPUT_CHUNK
# The v1.41 names: recording rules keep the names they have always had.
V1_41_DURATION = c.OPERATION_DURATION.name
V1_41_FIRST_CHUNK = c.TIME_TO_FIRST_CHUNK.name

Series = str | c.Alternatives


def base(name: str) -> str:
    """A counter's name without `_total` (recording rules are named after it)."""
    return name.removesuffix("_total")


def names(series: Series, suffix: str = "") -> tuple[str, ...]:
    """The Prometheus names of `series` (every generation's, newest first) with `suffix`."""
    found = series.names if isinstance(series, c.Alternatives) else (series,)
    return tuple(name + suffix for name in found)


def each(series: Series, suffix: str, expression: str) -> str:
    """`expression` (with `{name}`) for each name of `series`, joined by `or`."""
    return " or ".join(expression.format(name=name) for name in names(series, suffix))


def shown(series: Series, suffix: str = "") -> str:
    """The names of `series` for a person: `a` or `b`."""
    return " or ".join(f"`{name}`" for name in names(series, suffix))
