"""How many shadow copies an arm may run: a concurrency limit and a rate limit (token bucket)."""

from __future__ import annotations

import time
from collections.abc import Callable

CONCURRENCY = "concurrency"
RATE = "rate"


class ArmLimiter:
    """At most `concurrency` shadow calls at once and `per_second` started per second."""

    def __init__(
        self, concurrency: int, per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.concurrency = concurrency
        self.per_second = per_second
        self.in_flight = 0
        self._capacity = max(1.0, per_second)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()

    def acquire(self) -> str | None:
        """None when a shadow call may start (and is counted), else why not."""
        if self.in_flight >= self.concurrency:
            return CONCURRENCY
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens < 1.0:
            return RATE
        self._tokens -= 1.0
        self.in_flight += 1
        return None

    def release(self) -> None:
        """A shadow call ended."""
        self.in_flight -= 1
