"""Faults: queued on the Simulator (or by `POST /_sim/faults`) or asked for by request header."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class Fault:
    """A misbehaviour applied to the next `count` calls (for `model` only, when set)."""

    count: int = 1
    status: int | None = None
    retry_after: str | None = None
    stall_before_headers_s: float = 0.0
    stall_mid_stream_s: float = 0.0
    drop_after_chunks: int | None = None
    model: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """A fault from its JSON form (same field names); ValueError on anything else."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        fault = cls(**data)
        fault.validate()
        return fault

    def validate(self) -> None:
        """Raise ValueError when a field is out of range."""
        if not isinstance(self.count, int) or self.count < 1:
            raise ValueError("count must be a positive integer")
        status = self.status
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError("status must be an HTTP error status (400-599)")
        drop = self.drop_after_chunks
        if drop is not None and not (isinstance(drop, int) and drop >= 0):
            raise ValueError("drop_after_chunks must be an integer >= 0")
        if self.stall_before_headers_s < 0 or self.stall_mid_stream_s < 0:
            raise ValueError("stalls must be >= 0 seconds")


class FaultQueue:
    """Faults waiting for their calls, consumed first come, first served."""

    __slots__ = ("_faults",)

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def __len__(self) -> int:
        return len(self._faults)

    def add(self, fault: Fault) -> None:
        """Queue a fault."""
        fault.validate()
        self._faults.append(fault)

    def clear(self) -> None:
        """Forget every queued fault."""
        self._faults.clear()

    def take(self, model: str) -> Fault | None:
        """The first queued fault that applies to a call for `model`, used up by one."""
        if not self._faults:
            return None
        for index, fault in enumerate(self._faults):
            if fault.model is None or fault.model == model:
                fault.count -= 1
                if fault.count <= 0:
                    del self._faults[index]
                return fault
        return None


@dataclass(slots=True)
class Controls:
    """What one call is asked to do by `x-sim-*` request headers (None = not asked).

    x-sim-chunks (output chunks), x-sim-chunk-interval-ms, x-sim-ttft-ms, x-sim-status
    (an error status), x-sim-retry-after, x-sim-stall-before-headers-ms,
    x-sim-stall-mid-stream-ms (after the first output chunk), x-sim-drop-after-chunks,
    x-sim-gzip (when the client accepts gzip).
    """

    chunks: int | None = None
    chunk_interval_s: float | None = None
    ttft_s: float | None = None
    status: int | None = None
    retry_after: str | None = None
    stall_before_headers_s: float = 0.0
    stall_mid_stream_s: float = 0.0
    drop_after_chunks: int | None = None
    gzip: bool = False

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Controls:
        """Read the `x-sim-*` headers; malformed values are ignored."""
        return cls(
            chunks=_int(headers.get("x-sim-chunks")),
            chunk_interval_s=_ms(headers.get("x-sim-chunk-interval-ms")),
            ttft_s=_ms(headers.get("x-sim-ttft-ms")),
            status=_error_status(headers.get("x-sim-status")),
            retry_after=headers.get("x-sim-retry-after"),
            stall_before_headers_s=_ms(headers.get("x-sim-stall-before-headers-ms")) or 0.0,
            stall_mid_stream_s=_ms(headers.get("x-sim-stall-mid-stream-ms")) or 0.0,
            drop_after_chunks=_int(headers.get("x-sim-drop-after-chunks")),
            gzip=headers.get("x-sim-gzip", "") in ("1", "true", "yes")
            and "gzip" in headers.get("Accept-Encoding", ""),
        )

    def apply(self, fault: Fault) -> None:
        """Add a queued fault's demands to these controls (the headers win where both ask)."""
        if self.status is None:
            self.status = fault.status
        if self.retry_after is None:
            self.retry_after = fault.retry_after
        self.stall_before_headers_s = self.stall_before_headers_s or fault.stall_before_headers_s
        self.stall_mid_stream_s = self.stall_mid_stream_s or fault.stall_mid_stream_s
        if self.drop_after_chunks is None:
            self.drop_after_chunks = fault.drop_after_chunks


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _error_status(value: str | None) -> int | None:
    status = _int(value)
    return status if status is not None and 400 <= status <= 599 else None


def _ms(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value) / 1000.0)
    except ValueError:
        return None
