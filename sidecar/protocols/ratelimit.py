"""Quota headroom from a response's rate-limit headers: which header family a protocol's
upstreams send, and the values every family shares (numbers, durations, times).

A family module (`ratelimit_openai.py`, `ratelimit_anthropic.py`) names its headers; this
module reads them into `RateLimit`s for the record. A header that is present but malformed is
ignored and counted (the Prometheus sink exports the count), never an error for the call.
Gemini, Vertex AI, Bedrock and Ollama send no rate-limit headers: their calls read none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime

from sidecar.protocols import ratelimit_anthropic, ratelimit_openai
from sidecar.record import RateLimit

# Header names of one family: kind -> (limit, remaining, reset) header names, and how its
# reset header is written (`duration`: `6m0s`; `time`: an RFC 3339 time).
Family = tuple[tuple[str, str, str, str], ...]

# Protocols whose providers send no rate-limit headers (nothing to look up).
NO_HEADERS = frozenset(("gemini", "vertex", "bedrock", "ollama"))

# Go-style durations (`1h2m3.5s`, `6m0s`, `20ms`) as OpenAI and OpenAI-compatible vendors
# (Groq, ...) write them.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def family_for(protocol: str) -> tuple[Family, str] | None:
    """The header family the upstreams of `protocol` send and the format of its reset header,
    or None when they send none."""
    if protocol in NO_HEADERS:
        return None
    if protocol == "anthropic":
        return ratelimit_anthropic.HEADERS, "time"
    # OpenAI, Azure OpenAI and every OpenAI-compatible vendor behind a path prefix.
    return ratelimit_openai.HEADERS, "duration"


def parse_number(text: str) -> float | None:
    """A non-negative finite count, or None."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_duration(text: str) -> float | None:
    """Seconds of a Go-style duration (`6m0s`, `1s`, `20ms`) or a plain number of seconds."""
    text = text.strip()
    plain = parse_number(text)
    if plain is not None:
        return plain
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position == len(text) and position > 0 else None


def parse_reset_time(text: str, now_unix: float) -> float | None:
    """Seconds from `now_unix` to an RFC 3339 time (0 when it has passed), or None."""
    text = text.strip()
    if not text or "T" not in text.upper():
        return None
    try:
        when = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_unix)


def read_rate_limits(
    protocol: str, headers: Mapping[str, str], now_unix: float
) -> tuple[tuple[RateLimit, ...], int]:
    """The quota windows the response headers report, and how many headers were malformed."""
    family = family_for(protocol)
    if family is None:
        return (), 0
    names, reset_format = family
    found: list[RateLimit] = []
    errors = 0
    for kind, limit_name, remaining_name, reset_name in names:
        values: list[float | None] = []
        for name, parse in (
            (limit_name, parse_number),
            (remaining_name, parse_number),
            (reset_name, None),
        ):
            text = headers.get(name)
            if text is None:
                values.append(None)
                continue
            if parse is not None:
                value = parse(text)
            elif reset_format == "time":
                value = parse_reset_time(text, now_unix)
            else:
                value = parse_duration(text)
            if value is None:
                errors += 1
            values.append(value)
        if any(value is not None for value in values):
            found.append(RateLimit(kind, values[0], values[1], values[2]))
    return tuple(found), errors
