"""The gates of a staged rollout: is the candidate at least as good as the control, with
enough evidence to say so?

Each gate compares the candidate's evidence at the current step with the control's and says
`pass` (holds, with enough evidence), `fail` (crossed its limit, with enough evidence) or
`wait` (too little evidence, or undecided). Proportions (errors, low confidence, negative
feedback) are judged on the difference of two proportions with Newcombe's hybrid score
interval (built from the two Wilson intervals) at 80 % two-sided confidence: a gate fails
only when the whole interval lies above the limit and passes only when the whole interval
lies at or below it, so 2 errors in 15 calls is never a verdict. Quantile and cost ratios are
judged once both arms hold the minimum calls. The same evidence comes from this sidecar's own
calls (`LocalEvidence`, decision: local) or from Prometheus (fleet.py, decision: prometheus).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from sidecar.config.experiments import CONTROL, StopLossConfig
from sidecar.experiments.stoploss import (
    COST,
    ERRORS,
    LATENCY,
    LOW_CONFIDENCE,
    Sample,
    is_provider_error,
    quantile,
)
from sidecar.record import CallRecord

TTFT = "ttft"
FEEDBACK = "feedback"
GATES = (ERRORS, LATENCY, TTFT, COST, LOW_CONFIDENCE, FEEDBACK)

PASS = "pass"
FAIL = "fail"
WAIT = "wait"
# Not measured (no streams, no prices, no feedback): the gate does not hold a step back.
SKIP = "skip"

# z of an 80 % two-sided interval (10 % in each tail).
Z_80 = 1.2815515655446004
# Feedback is judged once each arm has this many messages at the step.
MIN_FEEDBACK = 20
# Samples kept per arm and step (memory bound, ~2 MB an arm; far above any sane min_calls):
# past it a step is judged on its latest calls.
MAX_SAMPLES = 20_000
NEGATIVE_FEEDBACK = frozenset({"rejected", "hallucination"})


def wilson(successes: float, trials: float, z: float = Z_80) -> tuple[float, float]:
    """The Wilson score interval of a proportion; (0, 1) for no trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = min(1.0, max(0.0, successes / trials))
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(
    hits: float, calls: float, control_hits: float, control_calls: float, z: float = Z_80
) -> tuple[float, float, float]:
    """(difference, lower, upper) of candidate minus control proportion (Newcombe's hybrid
    score interval)."""
    p1 = hits / calls if calls else 0.0
    p0 = control_hits / control_calls if control_calls else 0.0
    l1, u1 = wilson(hits, calls, z)
    l0, u0 = wilson(control_hits, control_calls, z)
    d = p1 - p0
    return (
        d,
        d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2),
    )


@dataclass(frozen=True, slots=True)
class ArmEvidence:
    """What one arm did at the current step (counts may be fractional: Prometheus' increase)."""

    calls: float = 0.0
    errors: float = 0.0
    p95: float | None = None
    ttft_p95: float | None = None
    priced: float = 0.0
    cost: float = 0.0
    measured: float = 0.0
    low_confidence: float = 0.0
    feedback: float = 0.0
    negative_feedback: float = 0.0

    @property
    def error_ratio(self) -> float:
        """Errors per call."""
        return self.errors / self.calls if self.calls else 0.0

    @property
    def cost_per_call(self) -> float:
        """USD per priced call."""
        return self.cost / self.priced if self.priced else 0.0


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's verdict: its value against its limit, and why."""

    gate: str
    verdict: str
    value: float | None
    limit: float
    detail: str

    def as_dict(self) -> dict[str, object]:
        """For /status."""
        value = None if self.value is None else round(self.value, 6)
        return {"verdict": self.verdict, "value": value, "limit": self.limit, "why": self.detail}


def judge(
    candidate: ArmEvidence, control: ArmEvidence, limits: StopLossConfig, min_calls: int
) -> list[GateResult]:
    """Every configured gate's verdict for the candidate against the control."""
    results: list[GateResult] = []
    enough = min(candidate.calls, control.calls) >= min_calls
    short = (
        f"too little evidence: {candidate.calls:.0f} candidate and {control.calls:.0f} control "
        f"calls at this step, {min_calls} needed per arm"
    )
    if limits.max_error_ratio_increase is not None:
        limit = limits.max_error_ratio_increase
        results.append(
            _proportion(
                ERRORS, "error ratio", limit, enough, short,
                (candidate.errors, candidate.calls, control.errors, control.calls),
            )
        )  # fmt: skip
    if limits.max_p95_ratio is not None:
        results.append(
            _ratio(
                LATENCY, "p95 duration", limits.max_p95_ratio, enough, short,
                candidate.p95, control.p95, limits.min_p95_increase_seconds,
            )
        )  # fmt: skip
    if limits.max_ttft_p95_ratio is not None:
        results.append(
            _ratio(
                TTFT, "p95 time to first chunk", limits.max_ttft_p95_ratio, enough, short,
                candidate.ttft_p95, control.ttft_p95, 0.0,
            )
        )  # fmt: skip
    if limits.max_cost_ratio is not None:
        limit = limits.max_cost_ratio
        if not (candidate.priced and control.priced):
            results.append(GateResult(COST, SKIP, None, limit, "no priced calls"))
        elif min(candidate.priced, control.priced) < min_calls:
            results.append(GateResult(COST, WAIT, None, limit, short))
        elif control.cost_per_call <= 0:
            results.append(GateResult(COST, SKIP, None, limit, "the control's calls cost 0"))
        else:
            ratio = candidate.cost_per_call / control.cost_per_call
            verdict = FAIL if ratio > limit else PASS
            results.append(
                GateResult(
                    COST, verdict, ratio, limit,
                    f"cost per call ${candidate.cost_per_call:.6f} is {ratio:.2f}x the "
                    f"control's ${control.cost_per_call:.6f} (limit {limit:g}x)",
                )
            )  # fmt: skip
    if limits.max_low_confidence_increase is not None:
        limit = limits.max_low_confidence_increase
        if not (candidate.measured and control.measured):
            results.append(GateResult(LOW_CONFIDENCE, SKIP, None, limit, "no confidence measured"))
        else:
            measured = min(candidate.measured, control.measured) >= min_calls
            results.append(
                _proportion(
                    LOW_CONFIDENCE, "low-confidence share", limit, measured, short,
                    (candidate.low_confidence, candidate.measured,
                     control.low_confidence, control.measured),
                )
            )  # fmt: skip
    if limits.max_negative_feedback_increase is not None:
        limit = limits.max_negative_feedback_increase
        if min(candidate.feedback, control.feedback) < MIN_FEEDBACK:
            results.append(
                GateResult(
                    FEEDBACK, SKIP, None, limit,
                    f"feedback not judged: {candidate.feedback:.0f} candidate and "
                    f"{control.feedback:.0f} control messages, {MIN_FEEDBACK} needed per arm",
                )
            )  # fmt: skip
        else:
            results.append(
                _proportion(
                    FEEDBACK, "negative feedback share", limit, True, "",
                    (candidate.negative_feedback, candidate.feedback,
                     control.negative_feedback, control.feedback),
                )
            )  # fmt: skip
    return results


def _proportion(
    gate: str,
    what: str,
    limit: float,
    enough: bool,
    short: str,
    counts: tuple[float, float, float, float],
) -> GateResult:
    hits, calls, control_hits, control_calls = counts
    if not (calls and control_calls):
        return GateResult(gate, WAIT, None, limit, short)
    d, low, high = difference_interval(hits, calls, control_hits, control_calls)
    if not enough:
        # The value so far is shown, never judged.
        return GateResult(gate, WAIT, d, limit, short)
    shares = (
        f"{what} {hits / calls:.2%} ({hits:.0f}/{calls:.0f}) vs the control's "
        f"{control_hits / control_calls:.2%} ({control_hits:.0f}/{control_calls:.0f}); "
        f"difference {d:+.2%}, 80% interval [{low:+.2%}, {high:+.2%}], limit +{limit:.2%}"
    )
    if low > limit:
        return GateResult(gate, FAIL, d, limit, shares)
    if high <= limit:
        return GateResult(gate, PASS, d, limit, shares)
    return GateResult(gate, WAIT, d, limit, f"undecided: {shares}")


def _ratio(
    gate: str,
    what: str,
    limit: float,
    enough: bool,
    short: str,
    candidate: float | None,
    control: float | None,
    min_increase: float,
) -> GateResult:
    if candidate is None or control is None:
        return GateResult(gate, SKIP, None, limit, f"{what} not measured")
    if control <= 0:
        return GateResult(gate, SKIP, None, limit, f"the control's {what} is 0")
    ratio = candidate / control
    if not enough:
        return GateResult(gate, WAIT, ratio, limit, short)
    detail = (
        f"{what} {candidate:.3f} s is {ratio:.2f}x the control's {control:.3f} s (limit {limit:g}x)"
    )
    if ratio > limit and candidate - control >= min_increase:
        return GateResult(gate, FAIL, ratio, limit, detail)
    return GateResult(gate, PASS, ratio, limit, detail)


class LocalEvidence:
    """This sidecar's own calls per arm since the current step began (decision: local)."""

    def __init__(self) -> None:
        self._samples: dict[str, deque[Sample]] = {}
        self._feedback: dict[str, list[int]] = {}

    def reset(self) -> None:
        """A new step: judge it on its own calls."""
        self._samples.clear()
        self._feedback.clear()

    def observe(self, record: CallRecord, at: float) -> None:
        """A finished call of an arm."""
        samples = self._samples.get(record.variant)
        if samples is None:
            samples = self._samples[record.variant] = deque(maxlen=MAX_SAMPLES)
        low = None if record.confidence is None else record.low_confidence
        ttft = None
        if record.first_chunk is not None and record.request.stream:
            ttft = record.first_chunk - record.received
        samples.append(
            Sample(at, record.duration, is_provider_error(record), record.cost_usd, low, ttft)
        )

    def feedback(self, variant: str, outcome: str) -> None:
        """A feedback message about a call of an arm."""
        counts = self._feedback.setdefault(variant, [0, 0])
        counts[0] += 1
        counts[1] += outcome in NEGATIVE_FEEDBACK

    def arm(self, variant: str) -> ArmEvidence:
        """The evidence of one arm."""
        samples = list(self._samples.get(variant, ()))
        durations = sorted(sample.duration for sample in samples)
        ttfts = sorted(sample.ttft for sample in samples if sample.ttft is not None)
        costs = [sample.cost for sample in samples if sample.cost is not None]
        lows = [sample.low_confidence for sample in samples if sample.low_confidence is not None]
        feedback, negative = self._feedback.get(variant, (0, 0))
        return ArmEvidence(
            calls=len(samples),
            errors=sum(sample.error for sample in samples),
            p95=quantile(durations, 0.95) if durations else None,
            ttft_p95=quantile(ttfts, 0.95) if ttfts else None,
            priced=len(costs),
            cost=sum(costs),
            measured=len(lows),
            low_confidence=sum(lows),
            feedback=feedback,
            negative_feedback=negative,
        )

    def arms(self, candidate: str) -> tuple[ArmEvidence, ArmEvidence]:
        """(candidate, control) evidence."""
        return self.arm(candidate), self.arm(CONTROL)
