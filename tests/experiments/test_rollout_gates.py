"""A rollout's gates and state machine: too little evidence is never a verdict, a real
difference is; a step advances only when every gate holds after its minimum duration; admin
actions apply only where APPLIES_TO says."""

from __future__ import annotations

import pytest

from sidecar.config.experiments import RolloutConfig, StopLossConfig
from sidecar.experiments.gates import (
    FAIL,
    PASS,
    SKIP,
    WAIT,
    ArmEvidence,
    difference_interval,
    judge,
    wilson,
)
from sidecar.experiments.rollout import (
    ABORT,
    PAUSE,
    PROMOTE,
    RESUME,
    FleetState,
    Reading,
    Rollout,
)

ERRORS_ONLY = StopLossConfig(max_error_ratio_increase=0.01, max_p95_ratio=None)


def test_two_errors_in_fifteen_calls_is_not_judged() -> None:
    candidate = ArmEvidence(calls=15, errors=2)
    control = ArmEvidence(calls=15, errors=0)
    # Below min_calls: no verdict at all.
    [gate] = judge(candidate, control, ERRORS_ONLY, min_calls=200)
    assert gate.verdict == WAIT and "too little evidence" in gate.detail
    # Even allowed to judge 15 calls, the 80 % interval is far too wide to say either way.
    [gate] = judge(candidate, control, ERRORS_ONLY, min_calls=15)
    assert gate.verdict == WAIT and gate.detail.startswith("undecided")


def test_three_percent_against_one_percent_over_2000_calls_trips() -> None:
    [gate] = judge(
        ArmEvidence(calls=2000, errors=60), ArmEvidence(calls=2000, errors=20), ERRORS_ONLY, 200
    )
    assert gate.verdict == FAIL
    assert gate.value == pytest.approx(0.02)
    assert "3.00% (60/2000)" in gate.detail and "1.00% (20/2000)" in gate.detail
    # The same candidate against an equally good control holds.
    [gate] = judge(
        ArmEvidence(calls=2000, errors=20), ArmEvidence(calls=2000, errors=20), ERRORS_ONLY, 200
    )
    assert gate.verdict == PASS


def test_intervals() -> None:
    low, high = wilson(0, 200)
    assert low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0.0081, abs=1e-4)
    d, low, high = difference_interval(60, 2000, 20, 2000)
    assert low > 0.01 and high < 0.03 and d == pytest.approx(0.02)


def test_latency_ttft_cost_low_confidence_and_feedback_gates() -> None:
    limits = StopLossConfig(
        max_error_ratio_increase=None,
        max_p95_ratio=1.5,
        min_p95_increase_seconds=0.1,
        max_ttft_p95_ratio=2.0,
        max_cost_ratio=1.5,
        max_low_confidence_increase=0.05,
        max_negative_feedback_increase=0.1,
    )
    control = ArmEvidence(
        calls=500, p95=1.0, ttft_p95=0.2, priced=500, cost=0.5, measured=500, low_confidence=10,
        feedback=100, negative_feedback=5,
    )  # fmt: skip
    slow = ArmEvidence(
        calls=500, p95=2.0, ttft_p95=0.3, priced=500, cost=1.0, measured=500, low_confidence=100,
        feedback=100, negative_feedback=40,
    )  # fmt: skip
    verdicts = {gate.gate: gate.verdict for gate in judge(slow, control, limits, 200)}
    assert verdicts == {
        "latency": FAIL,
        "ttft": PASS,
        "cost": FAIL,
        "low_confidence": FAIL,
        "feedback": FAIL,
    }
    verdicts = {gate.gate: gate.verdict for gate in judge(control, control, limits, 200)}
    assert set(verdicts.values()) == {PASS}
    # Nothing priced, no streams, no feedback: those gates do not hold a step back.
    bare = ArmEvidence(calls=500, p95=1.0)
    verdicts = {gate.gate: gate.verdict for gate in judge(bare, bare, limits, 200)}
    assert verdicts == {
        "latency": PASS, "ttft": SKIP, "cost": SKIP, "low_confidence": SKIP, "feedback": SKIP,
    }  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rollout(**changes: object) -> tuple[Rollout, Clock]:
    clock = Clock()
    config = RolloutConfig.model_validate({"steps": [1, 50, 100], "min_duration": 60, **changes})
    return Rollout(config, clock=clock, wall=clock), clock


def passing() -> Reading:
    return Reading(gates=judge(ArmEvidence(calls=500), ArmEvidence(calls=500), ERRORS_ONLY, 200))


def test_steps_advance_only_after_the_minimum_duration_with_every_gate_holding() -> None:
    ro, clock = rollout()
    assert ro.state == "pending" and ro.weight == 0
    assert ro.evaluate(passing()) is not None
    assert (ro.state, ro.weight) == ("step_1", 1)
    assert ro.evaluate(passing()) is None and "minimum duration" in ro.why
    clock.now += 61
    # Too little evidence holds the step, however long it lasted.
    thin = Reading(gates=judge(ArmEvidence(calls=5), ArmEvidence(calls=5), ERRORS_ONLY, 200))
    assert ro.evaluate(thin) is None and "too little evidence" in ro.why
    transition = ro.evaluate(passing())
    assert transition is not None and transition.reason == "gates_passed"
    assert (ro.state, ro.weight) == ("step_50", 50)
    clock.now += 61
    ro.evaluate(passing())
    clock.now += 61
    ro.evaluate(passing())
    assert (ro.state, ro.weight) == ("promoted", 100)


def test_on_complete_hold_stays_at_the_last_step() -> None:
    ro, clock = rollout(steps=[10], on_complete="hold")
    ro.evaluate(passing())
    clock.now += 61
    assert ro.evaluate(passing()) is None
    assert ro.state == "step_10" and "on_complete: hold" in ro.why


def test_a_failed_gate_rolls_back_at_once_and_an_error_holds() -> None:
    ro, _ = rollout()
    ro.evaluate(passing())
    assert ro.evaluate(Reading(error="Prometheus unreachable")) is None
    assert ro.state == "step_1" and ro.decision_error == "Prometheus unreachable"
    failing = judge(
        ArmEvidence(calls=2000, errors=60), ArmEvidence(calls=2000, errors=20), ERRORS_ONLY, 200
    )
    transition = ro.evaluate(Reading(gates=failing))
    assert transition is not None and transition.reason == "errors"
    assert (ro.state, ro.weight) == ("rolled_back", 0)


@pytest.mark.parametrize(
    ("state_before", "action", "after"),
    [
        ("step_1", PAUSE, "paused"),
        ("paused", RESUME, "step_1"),
        ("step_1", PROMOTE, "promoted"),
        ("promoted", ABORT, "rolled_back"),
        ("rolled_back", RESUME, "pending"),
        ("step_1", RESUME, None),
        ("promoted", PAUSE, None),
        ("rolled_back", ABORT, None),
        ("rolled_back", PROMOTE, None),
    ],
)
def test_admin_actions_apply_only_in_their_states(
    state_before: str, action: str, after: str | None
) -> None:
    ro, _ = rollout()
    ro.evaluate(passing())
    moves = {"paused": PAUSE, "promoted": PROMOTE, "rolled_back": ABORT}
    if state_before in moves:
        ro.act(moves[state_before])
    assert ro.state == state_before
    transition = ro.act(action)
    if after is None:
        assert transition is None and ro.state == state_before
        assert action not in ro.applicable()
    else:
        assert transition is not None and ro.state == after


def test_a_joining_sidecar_takes_the_fleets_step_and_follows_its_rollbacks() -> None:
    ro, _ = rollout(decision="prometheus", prometheus={"url": "http://prometheus:9090"})
    # The fleet counted 2 rollbacks before this run (since resumed): they do not count.
    transition = ro.evaluate(Reading(gates=[], fleet=FleetState(weight=50, rollbacks=2)))
    assert transition is not None and transition.reason == "fleet"
    assert (ro.state, ro.weight) == ("step_50", 50)
    assert "joined the fleet at 50%" in transition.detail
    ro.evaluate(Reading(gates=[], fleet=FleetState(weight=50, rollbacks=2)))
    assert ro.state == "step_50"
    ro.evaluate(Reading(gates=[], fleet=FleetState(weight=50, rollbacks=3)))
    assert ro.state == "rolled_back"
    # A sidecar joining a fleet that rolled back stays rolled back.
    late, _ = rollout(decision="prometheus", prometheus={"url": "http://prometheus:9090"})
    late.evaluate(Reading(gates=[], fleet=FleetState(weight=0, rolled_back=True, rollbacks=1)))
    assert late.state == "rolled_back"


@pytest.mark.parametrize(
    ("rollout_config", "message"),
    [
        ({"steps": [5, 1]}, "must increase"),
        ({"steps": [0, 10]}, "must increase"),
        ({"steps": [50, 120]}, "at most 100"),
        ({"decision": "prometheus"}, "needs prometheus.url"),
        ({"min_duration": "ten minutes"}, "not a duration"),
    ],
)
def test_bad_rollout_configs_say_why(rollout_config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RolloutConfig.model_validate(rollout_config)


def test_durations_take_units() -> None:
    config = RolloutConfig.model_validate({"min_duration": "10m", "evaluation_interval": "15s"})
    assert (config.min_duration, config.evaluation_interval) == (600.0, 15.0)


def test_the_minimum_duration_is_counted_in_evaluation_ticks() -> None:
    # Evaluated every 15 s: a 60 s minimum is due at the tick within 7.5 s of its end.
    ro, clock = rollout()
    ro.evaluate(passing())
    clock.now += 52
    assert ro.evaluate(passing()) is None and ro.state == "step_1"
    clock.now += 1
    assert ro.evaluate(passing()) is not None and ro.state == "step_50"
