"""Repeatability: does the same temperature-0 (or fixed-seed) request get the same output?

The request's fingerprint is a hash of its canonical JSON (sorted keys, `stream_options`
left out), upstream and path, taken on the call path (sidecar/forward/facts.py) when this
stage asks for it; the output's is a hash of the first choice's text and tool calls. A
bounded LRU maps request to output fingerprints; a repeat of a remembered request is `same`
or `different`. Only 16-byte hashes are stored, never prompts.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from sidecar.config.enrich import RepeatabilityConfig
from sidecar.record import NEED_FINGERPRINT, NEED_OUTPUT, OK, CallRecord, RequestInfo

SAME = "same"
DIFFERENT = "different"
GENERATIVE_OPERATIONS = frozenset(("chat", "text_completion", "generate_content"))


def is_repeatable_request(info: RequestInfo, body: Any) -> bool:
    """Whether a request asks for a deterministic answer: temperature 0 or a fixed seed."""
    if info.operation not in GENERATIVE_OPERATIONS or not isinstance(body, dict):
        return False
    return info.temperature == 0.0 or info.seed is not None


def output_fingerprint(record: CallRecord) -> bytes:
    """A hash of the first choice's output text and tool calls."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update((record.output_text or "").encode())
    for call in record.output_tool_calls:
        digest.update(b"\0\0")
        digest.update(call.encode())
    return digest.digest()


class FingerprintLRU:
    """request fingerprint → first output fingerprint, at most `capacity` entries."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def compare(self, request: bytes, output: bytes) -> str | None:
        """`same`/`different` for a remembered request; None (and remember it) otherwise."""
        entries = self._entries
        previous = entries.get(request)
        if previous is not None:
            entries.move_to_end(request)
            return SAME if previous == output else DIFFERENT
        entries[request] = output
        if len(entries) > self.capacity:
            entries.popitem(last=False)
        return None


class RepeatabilityEnricher:
    """Stage: sets `repeat_result` on successful repeatable calls seen before."""

    name = "repeatability"

    def __init__(self, config: RepeatabilityConfig) -> None:
        self.fingerprints = FingerprintLRU(config.max_fingerprints)

    def needs(self, request: RequestInfo, body: Any) -> int:
        """A repeatable request's fingerprint and output."""
        if is_repeatable_request(request, body):
            return NEED_FINGERPRINT | NEED_OUTPUT
        return 0

    def __call__(self, record: CallRecord) -> None:
        fingerprint = record.request_fingerprint
        if fingerprint is None or record.outcome != OK or not record.finish_reasons:
            return
        if record.output_text is None and not record.output_tool_calls:
            return
        record.repeat_result = self.fingerprints.compare(fingerprint, output_fingerprint(record))
