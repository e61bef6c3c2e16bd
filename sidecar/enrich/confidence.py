"""How sure the model was: the geometric-mean token probability, or a number it reported.

Sources (config `confidence.source`): `logprobs` — `exp(mean logprob)` of the first
choice's tokens, with the least likely token's probability as `confidence_min`;
`json_field` — a number at a dotted path in the model's JSON output (e.g. a classifier's
`{"intent": ..., "confidence": 0.62}`); `header` — a number in an upstream response header.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from sidecar.config.enrich import ConfidenceConfig
from sidecar.record import NEED_LOGPROBS, NEED_OUTPUT, CallRecord, RequestInfo

CONFIDENCE_HEADER = "x-model-sidecar-confidence"
LOW_CONFIDENCE_HEADER = "x-model-sidecar-low-confidence"


def parse_confidence(value: Any) -> float | None:
    """A confidence in [0, 1] from a number or numeric string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and 0.0 <= value <= 1.0:
        return float(value)
    return None


def json_field(text: str | None, path: tuple[str, ...]) -> Any:
    """The value at `path` in the JSON object that `text` holds (code fences tolerated)."""
    if not text:
        return None
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        value: Any = orjson.loads(text[start : end + 1])
    except orjson.JSONDecodeError:
        return None
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


class ConfidenceEnricher:
    """Stage: sets `confidence`, `confidence_min` and `low_confidence` from the configured
    source."""

    name = "confidence"

    def __init__(self, config: ConfidenceConfig) -> None:
        self.source = config.source
        self.threshold = config.threshold
        self.path = tuple(part for part in config.json_field.split(".") if part)
        if self.source == "json_field":
            self._needs = NEED_OUTPUT
        elif self.source == "logprobs" and config.request_logprobs:
            self._needs = NEED_LOGPROBS
        else:
            self._needs = 0

    def needs(self, request: RequestInfo, body: Any) -> int:
        """The output text (json_field), or logprobs asked for (confidence.request_logprobs)."""
        return self._needs

    def __call__(self, record: CallRecord) -> None:
        # Known already when a whole body got its confidence header (see CostEnricher).
        if record.confidence is not None:
            return
        if self.source == "logprobs":
            if record.logprob_count == 0:
                return
            record.confidence = math.exp(record.logprob_sum / record.logprob_count)
            record.confidence_min = math.exp(record.logprob_min)
        elif self.source == "json_field":
            record.confidence = parse_confidence(json_field(record.output_text, self.path))
        else:
            record.confidence = parse_confidence(record.reported_confidence)
        if record.confidence is not None:
            record.low_confidence = record.confidence < self.threshold


def confidence_headers(record: CallRecord) -> list[tuple[str, str]]:
    """The response headers that tell the app how sure the model was."""
    if record.confidence is None:
        return []
    headers = [(CONFIDENCE_HEADER, repr(record.confidence))]
    if record.low_confidence:
        headers.append((LOW_CONFIDENCE_HEADER, "true"))
    return headers
