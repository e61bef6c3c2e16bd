"""W3C trace context: read an app's `traceparent`, make ids for the call's span, format ours."""

from __future__ import annotations

import random
import re
from collections.abc import MutableMapping
from typing import NamedTuple

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse_traceparent(value: str | None) -> tuple[int, int, bool] | None:
    """(trace id, parent span id, sampled) from a traceparent header, or None when invalid."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or match.group(1) == "ff":
        return None
    trace_id = int(match.group(2), 16)
    span_id = int(match.group(3), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, bool(int(match.group(4), 16) & 1)


def new_span_id(rng: random.Random) -> int:
    """A random, non-zero 64-bit span id."""
    return rng.getrandbits(64) or 1


def new_trace_id(rng: random.Random) -> int:
    """A random, non-zero 128-bit trace id."""
    return rng.getrandbits(128) or 1


def format_traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    """The traceparent header naming `span_id` as the parent of what the upstream does."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


class TraceIds(NamedTuple):
    """The ids of a call's span: its trace, itself, its parent (None: a root) and sampling."""

    trace_id: int
    span_id: int
    parent_span_id: int | None
    sampled: bool


def start_trace(
    headers: MutableMapping[str, str],
    rng: random.Random,
    *,
    propagate: bool,
    parent: tuple[int, int, bool] | None = None,
) -> TraceIds:
    """The ids of the call's span, a child of `parent` (default: the app's traceparent);
    with `propagate`, that span is named as the parent in the traceparent sent upstream."""
    if parent is None:
        parent = parse_traceparent(headers.get("traceparent"))
    if parent is not None:
        trace_id, parent_span_id, sampled = parent
    else:
        trace_id, parent_span_id, sampled = new_trace_id(rng), None, True
    span_id = new_span_id(rng)
    if propagate:
        headers["traceparent"] = format_traceparent(trace_id, span_id, sampled)
    return TraceIds(trace_id, span_id, parent_span_id, sampled)
