"""The sidecar's own retry policy: which failed attempts to retry, how long to wait, and a
budget that keeps retries a bounded share of calls so an outage never becomes a storm.

Only attempts whose response has not started reaching the app are retried (the exchange
asks before relaying anything): connect errors and the configured statuses (429, 502,
503, 504 by default). The wait is the upstream's `Retry-After` (or `retry-after-ms`) when
it sent one — a longer one than `max_retry_after_seconds` is passed on to the app instead
— else exponential backoff with jitter.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from email.utils import parsedate_to_datetime

from sidecar.config.retry import RetryConfig
from sidecar.forward.headers import Headers
from sidecar.record import CONNECTION_ERROR

# The budget counts calls and retries in buckets of this many seconds.
BUDGET_BUCKET_S = 1.0


class RetryBudget:
    """Retries allowed: at most `ratio` of the calls in the sliding window, plus `minimum`.

    Counts live in per-second buckets, so memory is bounded by the window length.
    """

    def __init__(self, ratio: float, window_seconds: float, minimum: int) -> None:
        self.ratio = ratio
        self.window_seconds = window_seconds
        self.minimum = minimum
        self._buckets: deque[list[float]] = deque()  # [bucket start, calls, retries]
        self._calls = 0
        self._retries = 0

    def _current(self, now: float) -> list[float]:
        buckets = self._buckets
        horizon = now - self.window_seconds
        while buckets and buckets[0][0] + BUDGET_BUCKET_S <= horizon:
            _, calls, retries = buckets.popleft()
            self._calls -= int(calls)
            self._retries -= int(retries)
        start = math.floor(now / BUDGET_BUCKET_S) * BUDGET_BUCKET_S
        if not buckets or buckets[-1][0] != start:
            buckets.append([start, 0, 0])
        return buckets[-1]

    def record_call(self, now: float) -> None:
        """Count a call (its first attempt)."""
        self._current(now)[1] += 1
        self._calls += 1

    def try_spend(self, now: float) -> bool:
        """Take one retry from the budget; False when the window's share is used up."""
        bucket = self._current(now)
        if self._retries >= max(self.minimum, self.ratio * self._calls):
            return False
        bucket[2] += 1
        self._retries += 1
        return True


def retry_after_seconds(headers: Headers, now: float | None = None) -> float | None:
    """The wait an upstream asked for: `retry-after-ms`, or `Retry-After` seconds or date."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    remaining: float = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, remaining)


class RetryPolicy:
    """Decides, attempt by attempt, whether the sidecar retries and how long it waits first."""

    def __init__(self, config: RetryConfig, rng: random.Random | None = None) -> None:
        self.max_attempts = config.max_attempts
        self.statuses = frozenset(config.statuses)
        self.connect_errors = config.retry_connect_errors
        self.initial = config.backoff_initial_seconds
        self.cap = config.backoff_max_seconds
        self.max_retry_after = config.max_retry_after_seconds
        self.budget = RetryBudget(
            config.budget_ratio, config.budget_window_seconds, config.budget_min_retries
        )
        self._rng = rng or random.Random()

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter before attempt `attempt` (2 = first retry)."""
        ceiling: float = min(self.cap, self.initial * 2.0 ** (attempt - 2))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def delay(
        self,
        attempt: int,
        reason: str,
        headers: Headers | None,
        now: float,
    ) -> float | None:
        """Seconds to wait before attempt `attempt` after a failure for `reason`; None: don't."""
        if attempt > self.max_attempts:
            return None
        if reason == CONNECTION_ERROR:
            if not self.connect_errors:
                return None
        elif not reason.isdigit() or int(reason) not in self.statuses:
            return None
        wait = self.backoff(attempt)
        if headers is not None:
            asked = retry_after_seconds(headers)
            if asked is not None:
                if asked > self.max_retry_after:
                    return None
                wait = asked
        if not self.budget.try_spend(now):
            return None
        return wait
