"""Typed values read out of decoded JSON and raw event bytes, tolerant of what providers send."""

from __future__ import annotations

import re
from typing import Any

import orjson

from sidecar.record import RequestInfo


def parse_json_body(raw: bytes) -> Any:
    """The decoded JSON request body, or None when it is not JSON."""
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def as_int(value: Any) -> int | None:
    """An int from a JSON value, or None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    """A float from a JSON value, or None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def is_event_stream(content_type: str) -> bool:
    """Whether a Content-Type names a Server-Sent Events stream."""
    return content_type.strip().lower().startswith("text/event-stream")


def read_request_params(info: RequestInfo, body: dict[str, Any]) -> None:
    """Fill `info` from the top-level fields OpenAI- and Anthropic-style bodies share."""
    info.request_model = as_str(body.get("model"))
    info.stream = body.get("stream") is True
    info.temperature = as_float(body.get("temperature"))
    info.top_p = as_float(body.get("top_p"))
    info.top_k = as_int(body.get("top_k"))
    info.seed = as_int(body.get("seed"))
    info.choice_count = as_int(body.get("n"))
    info.frequency_penalty = as_float(body.get("frequency_penalty"))
    info.presence_penalty = as_float(body.get("presence_penalty"))
    info.stop_sequences = as_str_tuple(body.get("stop_sequences", body.get("stop")))
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        info.max_tokens = as_int(body.get(key))
        if info.max_tokens is not None:
            break


def as_str_tuple(value: Any) -> tuple[str, ...] | None:
    """A tuple of strings from a JSON string or list of strings (others skipped), or None."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        strings = tuple(item for item in value if isinstance(item, str))
        return strings or None
    return None


def as_str(value: Any) -> str | None:
    """A non-empty str from a JSON value, or None."""
    if isinstance(value, str) and value:
        return value
    return None


def dig(value: Any, *keys: str) -> Any:
    """`value[k1][k2]...` through nested JSON objects, or None where a level is missing."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


_TYPE_FIELD = re.compile(rb'"type"\s*:\s*"([^"]*)"')


def event_type(name: bytes | None, data: bytes) -> bytes:
    """An SSE event's type: its `event:` name, else the first `"type"` field of its data."""
    if name:
        return name
    match = _TYPE_FIELD.search(data)
    return match.group(1) if match else b""


def json_object_end(data: bytes, start: int) -> int:
    """The index just past the JSON object opening at `data[start]`; -1 if it never closes."""
    depth = 0
    in_string = False
    position = start
    size = len(data)
    while position < size:
        byte = data[position]
        if in_string:
            if byte == 0x5C:  # a backslash escapes the next byte
                position += 1
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x7B:
            depth += 1
        elif byte == 0x7D:
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return -1
