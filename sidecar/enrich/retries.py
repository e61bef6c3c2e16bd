"""Client retries: calls the app's SDK marked as a retry, or that repeat an Idempotency-Key.

The official OpenAI and Anthropic SDKs send `x-stainless-retry-count` (0 on the first
attempt); the proxy records it with the call. An `Idempotency-Key` seen again within
`retries.idempotency_window_seconds` marks a retry too. Only key hashes are kept, at most
`retries.idempotency_max_keys` of them (oldest forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from sidecar.config.retry import RetryConfig
from sidecar.record import CallRecord, RequestInfo


class IdempotencyWindow:
    """Remembers recent Idempotency-Key hashes; says whether a key was seen within the window."""

    def __init__(self, window_seconds: float, max_keys: int) -> None:
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen_before(self, key: bytes, now: float) -> bool:
        """Whether `key` was seen within the window before `now`; remembers it as seen now."""
        seen = self._seen
        last = seen.pop(key, None)
        if self.max_keys > 0:
            seen[key] = now
            while len(seen) > self.max_keys:
                seen.popitem(last=False)
        return last is not None and now - last <= self.window_seconds


class ClientRetryEnricher:
    """Stage: marks records whose Idempotency-Key repeats an earlier call's."""

    name = "client_retries"

    def __init__(self, config: RetryConfig) -> None:
        self.window = IdempotencyWindow(
            config.idempotency_window_seconds, config.idempotency_max_keys
        )

    def reconfigure(self, config: RetryConfig) -> None:
        """Apply a reloaded window and key limit; the keys already seen are kept."""
        self.window.window_seconds = config.idempotency_window_seconds
        self.window.max_keys = config.idempotency_max_keys

    def needs(self, request: RequestInfo, body: Any) -> int:
        """Nothing: the proxy always records the key's hash."""
        return 0

    def __call__(self, record: CallRecord) -> None:
        if record.idempotency_key is not None:
            record.repeated_idempotency_key = self.window.seen_before(
                record.idempotency_key, record.received
            )
