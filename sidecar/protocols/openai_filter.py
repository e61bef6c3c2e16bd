"""Removes what the sidecar asked an OpenAI upstream for from the app's response, byte-exactly.

With usage on (`stream_options.include_usage`), OpenAI adds `"usage":null` to every chunk
and sends one more chunk with `"choices":[]` and the usage before `[DONE]`. With logprobs
on (`confidence.request_logprobs`), each choice carries `"logprobs":{...}` where it would
otherwise carry `"logprobs":null`. The app that asked for neither gets its response
without them; every other byte passes unchanged.
"""

from __future__ import annotations

import re

from sidecar.protocols.interface import StreamFilter
from sidecar.protocols.jsonfields import json_object_end

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_USAGE_NULL = re.compile(rb',\s*"usage"\s*:\s*null|"usage"\s*:\s*null\s*,?\s*')
_USAGE_OBJECT = re.compile(rb'(,\s*)?"usage"\s*:\s*\{')
_TRAILING_COMMA = re.compile(rb"\s*,\s*")
_NO_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')
_LOGPROBS_OBJECT = re.compile(rb'"logprobs"\s*:\s*\{')


class InjectedFieldsFilter(StreamFilter):
    """Passes complete SSE events on, minus the usage and/or logprobs the sidecar asked for."""

    __slots__ = ("_held", "_logprobs", "_usage")

    def __init__(self, *, usage: bool = True, logprobs: bool = False) -> None:
        self._held = b""
        self._usage = usage
        self._logprobs = logprobs

    def feed(self, data: bytes) -> bytes:
        buffer = self._held + data if self._held else data
        end = _last_event_end(buffer)
        if end == len(buffer):
            self._held = b""
            return self._clean(buffer)
        self._held = buffer[end:]
        return self._clean(buffer[:end]) if end else b""

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return self._clean(held)

    def _clean(self, events: bytes) -> bytes:
        if self._logprobs:
            events = without_logprobs(events)
        return _without_usage(events) if self._usage else events


def without_logprobs(data: bytes) -> bytes:
    """`data` (events or a whole JSON body) with every `"logprobs":{...}` made `"logprobs":null`."""
    if b'"logprobs"' not in data:
        return data
    parts: list[bytes] = []
    start = 0
    position = 0
    while (found := _LOGPROBS_OBJECT.search(data, position)) is not None:
        opening = found.end() - 1
        end = json_object_end(data, opening)
        if end < 0:
            break
        parts.append(data[start:opening])
        parts.append(b"null")
        start = position = end
    if not parts:
        return data
    parts.append(data[start:])
    return b"".join(parts)


def _last_event_end(buffer: bytes) -> int:
    """The index just past the last blank line (event boundary) in `buffer`; 0 if none."""
    at = buffer.rfind(b"\n\n")
    end = at + 2 if at >= 0 else 0
    if b"\r" in buffer:
        for separator in (b"\r\n\r\n", b"\r\r"):
            at = buffer.rfind(separator)
            if at >= 0:
                end = max(end, at + len(separator))
    return end


def _without_usage(events: bytes) -> bytes:
    """Complete events with the injected usage removed."""
    if b'"usage"' not in events:
        return events
    # The common case: every usage field is OpenAI's compact `,"usage":null`.
    quick = events.replace(b',"usage":null', b"")
    if b'"usage"' not in quick:
        return quick
    parts: list[bytes] = []
    start = 0
    for boundary in _BOUNDARY.finditer(events):
        parts.append(_event_without_usage(events[start : boundary.end()]))
        start = boundary.end()
    if start < len(events):
        parts.append(_event_without_usage(events[start:]))
    return b"".join(parts)


def _event_without_usage(event: bytes) -> bytes:
    """One event (with its terminating blank line): dropped, trimmed or unchanged."""
    if b'"usage"' not in event:
        return event
    usage = _USAGE_OBJECT.search(event)
    if usage is None:
        return _USAGE_NULL.sub(b"", event, count=1)
    if _NO_CHOICES.search(event) is not None:
        return b""  # the usage-only chunk that include_usage added
    # Usage attached to a chunk that also carries choices: cut just the field.
    end = json_object_end(event, usage.end() - 1)
    if end < 0:
        return event
    if usage.group(1) is None:
        comma = _TRAILING_COMMA.match(event, end)
        if comma is not None:
            end = comma.end()
    return event[: usage.start()] + event[end:]
