"""The /api/summary document (docs/comparison-page.md): the model-comparison report's rows
(`report.aggregate`, `report.comparison_values`) over a window, and charts of latency and time
to first token percentiles over the last minutes, from the history's readings.

A window's numbers are the difference between a reading taken now and the newest kept
reading at or before the window's start (what each series counted since then, as
increase() in PromQL but without extrapolation); "start" is the reading now itself. So a
window starts up to one snapshot interval (1 h: one minute) earlier than asked, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sidecar.tools.report import (
    ARM_GROUP,
    DURATION,
    REQUESTS,
    TTFC,
    GroupStats,
    aggregate,
    comparison_values,
)
from sidecar.ui.history import HOURLY_SPAN_SECONDS, HOURLY_STEP_SECONDS, History, Ring
from sidecar.ui.series import Reading, as_samples, delta

START = "start"
# The page's window selector; any duration up to an hour works too (`90s`, `20m`).
WINDOWS = ("5m", "1h", START)
DEFAULT_WINDOW = "5m"
MAX_WINDOW_SECONDS = HOURLY_SPAN_SECONDS
_DURATION = re.compile(r"^([1-9][0-9]{0,4})(s|m|h)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
# Each chart point of the recent ring shows the calls of this long before it (smooths a
# model with few calls a second); the hourly ring's points show their minute.
ROLLING_SECONDS = 30.0
# Series a chart point reads.
_CHART_SERIES = frozenset({REQUESTS, DURATION + "_bucket", TTFC + "_bucket"})


class WindowError(ValueError):
    """A window the summary cannot show; the message says which ones it can."""


@dataclass(frozen=True)
class Window:
    """A window as asked for: its name and length (None: since start)."""

    name: str
    seconds: float | None


def parse_window(text: str | None) -> Window:
    """`5m`, `1h`, `start` or another duration up to 1h (`90s`, `20m`); WindowError otherwise."""
    name = (text or DEFAULT_WINDOW).strip()
    if name == START:
        return Window(START, None)
    match = _DURATION.match(name)
    if match is None:
        raise WindowError(
            f"window must be one of {', '.join(WINDOWS)} or a duration such as 90s or 20m "
            f"(at most 1h), got {name!r}"
        )
    seconds = float(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if seconds > MAX_WINDOW_SECONDS:
        raise WindowError(
            f"window {name!r} is longer than the hour of history kept in memory: use 1h or start"
        )
    return Window(name, seconds)


def baseline(history: History, now: Reading, seconds: float) -> Reading | None:
    """The newest kept reading at or before `seconds` before `now`; None when the sidecar is
    younger than that (the window is then everything since start)."""
    target = now.at_monotonic - seconds
    for ring in (history.recent(), history.hourly()):
        readings = ring.readings
        if not readings:
            continue
        if readings[0].at_monotonic > target:
            if not ring.wrapped:
                return None
            continue
        return next(r for r in reversed(readings) if r.at_monotonic <= target)
    hourly = history.hourly().readings
    return hourly[0] if hourly else None


def rows(stats: list[GroupStats]) -> list[dict[str, Any]]:
    """The comparison's rows (report.comparison_values) plus the window's spend and errors."""
    result = []
    for item in stats:
        row = comparison_values(item)
        row["errors"] = item.errors
        row["cost_usd"] = item.cost_usd
        row["output_tokens_per_second"] = item.output_tokens_per_second
        result.append(row)
    return result


class Summary:
    """Computes /api/summary documents from a History (in the page's worker thread)."""

    def __init__(self, history: History) -> None:
        self.history = history
        # Chart points computed once and reused by later refreshes, keyed by the monotonic
        # times of their two readings (only the points still shown are kept).
        self._points: dict[tuple[float, float | None], dict[tuple[str, ...], tuple[Any, ...]]] = {}

    def compute(self, window: Window) -> dict[str, Any]:
        """The document for `window`, but for its `sidecar` and `experiments` parts."""
        history = self.history
        now = history.read_now()
        current = now.as_dict()
        base = None if window.seconds is None else baseline(history, now, window.seconds)
        counted = current if base is None else delta(current, base.as_dict())
        from_unix = history.started_unix if base is None else base.at_unix
        stats = aggregate(as_samples(counted), ARM_GROUP)
        recent, hourly = history.capacity
        return {
            "generated_at_unix": now.at_unix,
            "window": {
                "name": window.name,
                "requested_seconds": window.seconds,
                "from_unix": from_unix,
                "seconds": now.at_unix - from_unix,
                "since_start": base is None,
            },
            "refresh_seconds": history.interval,
            "history": {
                "snapshot_interval_seconds": history.interval,
                "recent_readings": len(history.recent().readings),
                "recent_capacity": recent,
                "hourly_readings": len(history.hourly().readings),
                "hourly_capacity": hourly,
                "series_per_reading": len(now.keys),
                "last_snapshot_seconds": history.last_cost_seconds,
            },
            "rows": rows(stats),
            "charts": self.charts(window, now),
        }

    def charts(self, window: Window, now: Reading) -> dict[str, Any]:
        """p50 and p95 duration, p95 time to first chunk and calls per model and arm, over
        the window's last minutes (at most the last hour), one point per kept reading."""
        uptime = now.at_monotonic - self.history.started_monotonic
        span = min(window.seconds or uptime, MAX_WINDOW_SECONDS)
        recent = self.history.recent()
        rolling = max(ROLLING_SECONDS, self.history.interval)
        ring, step_back = recent, rolling
        reaches = recent.readings and recent.readings[0].at_monotonic <= now.at_monotonic - span
        if recent.wrapped and not reaches:
            ring, step_back = self.history.hourly(), 0.0
        shown = [r for r in ring.readings if r.at_monotonic >= now.at_monotonic - span]
        used: dict[tuple[float, float | None], dict[tuple[str, ...], tuple[Any, ...]]] = {}
        points = []
        for reading in shown:
            before = _before(ring, reading, step_back)
            cache_key = (reading.at_monotonic, None if before is None else before.at_monotonic)
            point = self._points.get(cache_key)
            if point is None:
                point = _point(reading, before)
            used[cache_key] = point
            points.append(point)
        # Only the points still shown are kept for the next refresh.
        self._points = used
        keys = sorted({key for point in points for key in point})
        series = []
        for key in keys:
            values = [point.get(key) for point in points]
            series.append(
                {
                    **dict(zip(("model", "experiment", "variant"), key, strict=True)),
                    "p50_seconds": [v[0] if v else None for v in values],
                    "p95_seconds": [v[1] if v else None for v in values],
                    "p95_ttft_seconds": [v[2] if v else None for v in values],
                    "calls": [v[3] if v else 0 for v in values],
                }
            )
        return {
            "span_seconds": span,
            "step_seconds": self.history.interval if ring is recent else HOURLY_STEP_SECONDS,
            "point_covers_seconds": rolling if ring is recent else HOURLY_STEP_SECONDS,
            "times_unix": [r.at_unix for r in shown],
            "series": series,
        }


def _before(ring: Ring, reading: Reading, seconds: float) -> Reading | None:
    """The reading a chart point counts from: the newest one at least `seconds` before
    `reading` (0: the one before it); None (zeros) when the ring holds none and goes back to
    the start."""
    target = reading.at_monotonic - seconds
    earlier = None
    for candidate in ring.readings:
        if candidate is reading or candidate.at_monotonic > target:
            break
        earlier = candidate
    if earlier is None and ring.wrapped:
        return reading  # nothing to count from: an empty point
    return earlier


def _point(reading: Reading, before: Reading | None) -> dict[tuple[str, ...], tuple[Any, ...]]:
    """Per model and arm: (p50, p95, p95 time to first chunk, calls) between two readings."""
    now = {key: value for key, value in reading.as_dict().items() if key[0] in _CHART_SERIES}
    counted = now
    if before is not None:
        counted = delta(now, {k: v for k, v in before.as_dict().items() if k[0] in _CHART_SERIES})
    return {
        item.key: (
            item.duration.quantile(0.5),
            item.duration.quantile(0.95),
            item.ttfc.quantile(0.95),
            item.calls,
        )
        for item in aggregate(as_samples(counted), ARM_GROUP)
    }
