"""The page's short-term history: readings of the registry (series.py) in two bounded rings,
taken on a timer in one worker thread, never on the call path.

- recent: one reading every `interval` seconds for the last 10 minutes (121 readings at the
  default 5 s; at most 601, at 1 s): the 5-minute window and the charts of the last minutes;
- hourly: one of those readings a minute for the last hour (61 readings): the 1-hour window.

A reading holds one 8-byte float per series the page reads (model, arm, bucket ...), and
consecutive readings share their list of series, so memory is bounded by the ring sizes and
the registry's own (bounded) label values. No new storage: it is gone at restart.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.logs import LogThrottle
from sidecar.ui.series import Reading, SeriesKey

log = logging.getLogger("sidecar.ui")

RECENT_SPAN_SECONDS = 600.0
HOURLY_STEP_SECONDS = 60.0
HOURLY_SPAN_SECONDS = 3600.0


def ring_sizes(interval: float) -> tuple[int, int]:
    """(recent, hourly) ring capacities for a snapshot interval."""
    return math.ceil(RECENT_SPAN_SECONDS / interval) + 1, int(
        HOURLY_SPAN_SECONDS / HOURLY_STEP_SECONDS
    ) + 1


@dataclass(frozen=True)
class Ring:
    """A consistent copy of one ring: its readings oldest first, and whether the ring has
    already forgotten older ones (if not, its oldest reading is the first one taken)."""

    readings: tuple[Reading, ...]
    wrapped: bool


class History:
    """The two rings, filled by `run` (a task) or `take` (one reading, e.g. in tests)."""

    def __init__(
        self,
        read: Callable[[], dict[SeriesKey, float]],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.interval = interval
        self._read = read
        self._clock = clock
        self._wall_clock = wall_clock
        recent, hourly = ring_sizes(interval)
        self._recent: deque[Reading] = deque(maxlen=recent)
        self._hourly: deque[Reading] = deque(maxlen=hourly)
        self._recent_wrapped = False
        self._hourly_wrapped = False
        # Readings come from the worker thread; summaries copy the rings from another.
        self._lock = threading.Lock()
        self.last_cost_seconds: float | None = None
        self._failures = LogThrottle(60.0)
        self.started_monotonic = clock()
        self.started_unix = wall_clock()

    @property
    def capacity(self) -> tuple[int, int]:
        """(recent, hourly) ring capacities."""
        return self._recent.maxlen or 0, self._hourly.maxlen or 0

    def read_now(self) -> Reading:
        """A reading of the registry now (not kept)."""
        started = time.perf_counter()
        values = self._read()
        at_monotonic, at_unix = self._clock(), self._wall_clock()
        with self._lock:
            previous = self._recent[-1] if self._recent else None
        keys = tuple(values)
        if previous is not None and previous.keys == keys:
            keys = previous.keys  # shared while the set of series is unchanged
        reading = Reading(at_unix, at_monotonic, keys, array("d", values.values()))
        self.last_cost_seconds = time.perf_counter() - started
        return reading

    def take(self) -> Reading:
        """Take a reading and keep it (in the hourly ring too once a minute has passed)."""
        reading = self.read_now()
        with self._lock:
            if len(self._recent) == self._recent.maxlen:
                self._recent_wrapped = True
            self._recent.append(reading)
            last_hourly = self._hourly[-1] if self._hourly else None
            if (
                last_hourly is None
                or reading.at_monotonic - last_hourly.at_monotonic >= HOURLY_STEP_SECONDS
            ):
                if len(self._hourly) == self._hourly.maxlen:
                    self._hourly_wrapped = True
                self._hourly.append(reading)
        return reading

    def recent(self) -> Ring:
        """A copy of the recent ring."""
        with self._lock:
            return Ring(tuple(self._recent), self._recent_wrapped)

    def hourly(self) -> Ring:
        """A copy of the hourly ring."""
        with self._lock:
            return Ring(tuple(self._hourly), self._hourly_wrapped)

    async def run(self, worker: Callable[[Callable[[], Reading]], asyncio.Future[Reading]]) -> None:
        """Take a reading every `interval` seconds through `worker` (the page's thread) until
        cancelled; a reading that fails is skipped, the next one is tried."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await worker(self.take)
            except Exception:
                if self._failures.allow("take"):
                    log.exception("the comparison page could not read the metrics")
            next_at += self.interval
            # Behind (a slow machine, a suspended laptop): carry on from now, no burst.
            next_at = max(next_at, loop.time())
            await asyncio.sleep(next_at - loop.time())
