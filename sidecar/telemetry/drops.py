"""Counts of finished calls that a telemetry sink had to drop, by sink name."""

from __future__ import annotations


class TelemetryDrops:
    """A shared tally: sinks add to it, the Prometheus sink exports it as a counter."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, sink: str, count: int = 1) -> None:
        """Count `count` dropped items for `sink`."""
        self._counts[sink] = self._counts.get(sink, 0) + count

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts so far."""
        return dict(self._counts)
