"""The stop-loss: a rolling window of calls per arm, and the limits a candidate must stay within.

Each finished call of an experiment lands in its arm's window (the last `window_calls`
calls, optionally only those of the last `window_seconds`). Once the control and a
candidate both hold `min_calls`, the candidate is judged against the control: p95
duration ratio, error ratio difference, cost per call ratio and low-confidence difference.
The first limit crossed is the trip's reason.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.config.experiments import CONTROL, StopLossConfig
from sidecar.record import CLIENT_CANCELLED, OK, UPSTREAM_ERROR, CallRecord

LATENCY = "latency"
ERRORS = "errors"
COST = "cost"
LOW_CONFIDENCE = "low_confidence"
REASONS = (LATENCY, ERRORS, COST, LOW_CONFIDENCE)


def is_provider_error(record: CallRecord) -> bool:
    """A failure on the provider's side or on the way (the alerts' definition): every outcome
    but ok and client_cancelled, not counting 4xx answers other than 429."""
    if record.outcome in (OK, CLIENT_CANCELLED):
        return False
    if record.outcome == UPSTREAM_ERROR and record.http_status is not None:
        return record.http_status >= 500 or record.http_status == 429
    return True


@dataclass(frozen=True, slots=True)
class Sample:
    """What the stop-loss keeps of one call."""

    at: float
    duration: float
    error: bool
    cost: float | None
    low_confidence: bool | None
    # Time to first chunk of a stream (rollout gates); None otherwise.
    ttft: float | None = None


@dataclass(frozen=True, slots=True)
class ArmStats:
    """An arm's window, summarised."""

    calls: int
    p95: float
    error_ratio: float
    priced: int
    cost_per_call: float
    measured: int
    low_confidence_ratio: float

    @classmethod
    def of(cls, samples: list[Sample]) -> ArmStats:
        """The summary of a window's samples."""
        durations = sorted(sample.duration for sample in samples)
        costs = [sample.cost for sample in samples if sample.cost is not None]
        lows = [sample.low_confidence for sample in samples if sample.low_confidence is not None]
        calls = len(samples)
        return cls(
            calls=calls,
            p95=quantile(durations, 0.95),
            error_ratio=sum(sample.error for sample in samples) / calls if calls else 0.0,
            priced=len(costs),
            cost_per_call=sum(costs) / len(costs) if costs else 0.0,
            measured=len(lows),
            low_confidence_ratio=sum(lows) / len(lows) if lows else 0.0,
        )


def quantile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank), 0.0 for none."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Trip:
    """A candidate rolled back: which, why (a REASONS word and a sentence), and when."""

    variant: str
    reason: str
    detail: str
    at_unix: float


class StopLoss:
    """The windows of one experiment's arms, and the judgement of its candidates."""

    def __init__(self, config: StopLossConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._windows: dict[str, deque[Sample]] = {}

    def reset(self) -> None:
        """Forget every window (after a resume the candidate is judged afresh)."""
        self._windows.clear()

    def window(self, variant: str) -> list[Sample]:
        """The calls of an arm still in its window."""
        samples = self._windows.get(variant)
        if samples is None:
            return []
        if self.config.window_seconds is not None:
            horizon = self._clock() - self.config.window_seconds
            while samples and samples[0].at < horizon:
                samples.popleft()
        return list(samples)

    def observe(self, record: CallRecord, live: set[str]) -> Trip | None:
        """Add a finished call to its arm's window; a trip when a live candidate is now judged
        worse than the control."""
        variant = record.variant
        samples = self._windows.get(variant)
        if samples is None:
            samples = self._windows[variant] = deque(maxlen=self.config.window_calls)
        low = None if record.confidence is None else record.low_confidence
        samples.append(
            Sample(self._clock(), record.duration, is_provider_error(record), record.cost_usd, low)
        )
        candidates = live if variant == CONTROL else ({variant} & live)
        if not candidates:
            return None
        control = self.window(CONTROL)
        if len(control) < self.config.min_calls:
            return None
        control_stats = ArmStats.of(control)
        for candidate in sorted(candidates):
            window = self.window(candidate)
            if len(window) < self.config.min_calls:
                continue
            found = self.judge(ArmStats.of(window), control_stats)
            if found is not None:
                reason, detail = found
                return Trip(candidate, reason, detail, time.time())
        return None

    def judge(self, candidate: ArmStats, control: ArmStats) -> tuple[str, str] | None:
        """(reason, explanation) of the first limit the candidate crosses, or None."""
        config = self.config
        minimum = config.min_calls
        limit = config.max_p95_ratio
        if (
            limit is not None
            and control.p95 > 0
            and candidate.p95 / control.p95 > limit
            and candidate.p95 - control.p95 >= config.min_p95_increase_seconds
        ):
            return LATENCY, (
                f"p95 duration {candidate.p95:.3f} s is {candidate.p95 / control.p95:.2f}x the "
                f"control's {control.p95:.3f} s (limit {limit:g}x)"
            )
        limit = config.max_error_ratio_increase
        if limit is not None and candidate.error_ratio - control.error_ratio > limit:
            return ERRORS, (
                f"error ratio {candidate.error_ratio:.1%} vs the control's "
                f"{control.error_ratio:.1%} (limit +{limit:.1%})"
            )
        limit = config.max_cost_ratio
        if (
            limit is not None
            and min(candidate.priced, control.priced) >= minimum
            and control.cost_per_call > 0
            and candidate.cost_per_call / control.cost_per_call > limit
        ):
            ratio = candidate.cost_per_call / control.cost_per_call
            return COST, (
                f"cost per call ${candidate.cost_per_call:.6f} is {ratio:.2f}x the control's "
                f"${control.cost_per_call:.6f} (limit {limit:g}x)"
            )
        limit = config.max_low_confidence_increase
        if (
            limit is not None
            and min(candidate.measured, control.measured) >= minimum
            and candidate.low_confidence_ratio - control.low_confidence_ratio > limit
        ):
            return LOW_CONFIDENCE, (
                f"low-confidence share {candidate.low_confidence_ratio:.1%} vs the control's "
                f"{control.low_confidence_ratio:.1%} (limit +{limit:.1%})"
            )
        return None

    def reasons(self) -> tuple[str, ...]:
        """The reasons this stop-loss can trip for (its configured limits)."""
        config = self.config
        limits = (
            (LATENCY, config.max_p95_ratio),
            (ERRORS, config.max_error_ratio_increase),
            (COST, config.max_cost_ratio),
            (LOW_CONFIDENCE, config.max_low_confidence_increase),
        )
        return tuple(reason for reason, limit in limits if limit is not None)
