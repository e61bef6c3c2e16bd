"""The state machine of a staged rollout: pending → step k → promoted | rolled_back | paused.

A rollout owns its experiment's candidate share. Each evaluation (`evaluate`) takes the gates'
verdicts (gates.py) and, in decision: prometheus, what the fleet already did (fleet.py), and
moves at most once: a failed gate rolls back at once; every gate passing after the step's
minimum duration advances to the next step (after the last: promoted, or held with
on_complete: hold); a fleet ahead of this sidecar is followed; anything else holds. Admin
actions (`act`) apply only in the states `APPLIES_TO` lists for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.config.experiments import WEIGHT_TOTAL, RolloutConfig
from sidecar.experiments.gates import FAIL, PASS, SKIP, GateResult, LocalEvidence

PENDING = "pending"
PROMOTED = "promoted"
ROLLED_BACK = "rolled_back"
PAUSED = "paused"
STEPPING = "step"

PAUSE = "pause"
RESUME = "resume"
PROMOTE = "promote"
ABORT = "abort"
ACTIONS = (PAUSE, RESUME, PROMOTE, ABORT)
# Which admin action applies in which kind of state (STEPPING: any step).
APPLIES_TO: dict[str, frozenset[str]] = {
    PAUSE: frozenset({PENDING, STEPPING}),
    RESUME: frozenset({PAUSED, ROLLED_BACK}),
    PROMOTE: frozenset({PENDING, STEPPING, PAUSED}),
    ABORT: frozenset({PENDING, STEPPING, PAUSED, PROMOTED}),
}

START = "start"
GATES_PASSED = "gates_passed"
FLEET = "fleet"
# Transitions kept for /status (the counter keeps them all).
HISTORY = 50


def step_state(weight: float) -> str:
    """The state name of a step: `step_25`, `step_2.5`."""
    return f"step_{weight:g}"


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, for /status and the log."""

    from_state: str
    to_state: str
    reason: str
    detail: str
    at_unix: float


@dataclass(frozen=True, slots=True)
class FleetState:
    """What Prometheus says the fleet did (decision: prometheus); None fields: not known."""

    # The most advanced weight a sidecar of the fleet holds now (its last reported value).
    weight: float | None = None
    rolled_back: bool = False
    promoted: bool = False
    # Rollbacks counted by the fleet so far (to tell a new rollback from an old one).
    rollbacks: float = 0.0


@dataclass(slots=True)
class Reading:
    """One evaluation's input: the gates' verdicts, or why they could not be read."""

    gates: list[GateResult] = field(default_factory=list)
    fleet: FleetState | None = None
    error: str | None = None


class Rollout:
    """One experiment's rollout: its state, the candidate's share, the evidence of the step."""

    def __init__(
        self,
        config: RolloutConfig,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.steps = tuple(config.steps)
        self._clock = clock
        self._wall = wall
        self.state = PENDING
        # The index of the current step (-1 before the first); kept while paused.
        self.step = -1
        self.step_started = clock()
        self.step_started_unix = wall()
        self.evidence = LocalEvidence()
        self.history: list[Transition] = []
        self.gates: list[GateResult] = []
        self.why = "waiting for the first evaluation"
        self.decision_error: str | None = None
        self.last_evaluated_unix: float | None = None
        # decision: prometheus — the fleet's rollback count when this run began (None: not
        # read yet); a higher count later is a rollback some sidecar decided.
        self.rollbacks_seen: float | None = None
        self.joined = config.decision == "local"

    # What the experiment reads --------------------------------------------------------

    @property
    def weight(self) -> float:
        """The candidate's percent of matching calls now."""
        if self.state == PROMOTED:
            return WEIGHT_TOTAL
        if self.state == ROLLED_BACK or self.step < 0:
            return 0.0
        return self.steps[self.step]

    @property
    def kind(self) -> str:
        """The state's kind (a step is STEPPING), for APPLIES_TO."""
        return STEPPING if self.state.startswith("step_") else self.state

    @property
    def step_age(self) -> float:
        """Seconds since the current step (or state) began."""
        return self._clock() - self.step_started

    # Moves ----------------------------------------------------------------------------

    def _move(self, to_state: str, reason: str, detail: str, step: int | None = None) -> Transition:
        transition = Transition(self.state, to_state, reason, detail, self._wall())
        if step is not None:
            self.step = step
        if to_state != self.state or step is not None:
            self.step_started = self._clock()
            self.step_started_unix = self._wall()
            self.evidence.reset()
        self.state = to_state
        self.history = [*self.history[-(HISTORY - 1) :], transition]
        self.why = detail
        return transition

    def _to_step(self, index: int, reason: str, detail: str) -> Transition:
        return self._move(step_state(self.steps[index]), reason, detail, index)

    def evaluate(self, reading: Reading) -> Transition | None:
        """Take one evaluation's reading; the transition it caused, if any."""
        self.last_evaluated_unix = self._wall()
        self.decision_error = reading.error
        if reading.error is not None:
            self.why = f"holding: the verdict could not be read ({reading.error})"
            return None
        fleet = reading.fleet
        if fleet is not None:
            followed = self._follow(fleet)
            if followed is not None or not self.joined:
                self.joined = True
                if followed is not None:
                    return followed
        if self.state in (PAUSED, ROLLED_BACK, PROMOTED):
            self.gates = reading.gates
            return None
        if self.state == PENDING:
            return self._to_step(0, START, f"started at {self.steps[0]:g}%")
        self.gates = reading.gates
        failed = [gate for gate in reading.gates if gate.verdict == FAIL]
        if failed:
            gate = failed[0]
            return self._move(ROLLED_BACK, gate.gate, f"{gate.gate} gate failed: {gate.detail}")
        waiting = [gate for gate in reading.gates if gate.verdict not in (PASS, SKIP)]
        if waiting:
            self.why = f"holding at {self.weight:g}%: {waiting[0].gate}: {waiting[0].detail}"
            return None
        # Evaluations come on the interval's ticks: a minimum that ends within half an interval
        # of this tick is due now (else pods that entered the step a few ms apart would split
        # across two ticks).
        left = self.config.min_duration - self.step_age - self.config.evaluation_interval / 2
        if left > 0:
            self.why = (
                f"holding at {self.weight:g}%: every gate holds; {left:.0f} s of the step's "
                f"minimum duration left"
            )
            return None
        if self.step + 1 < len(self.steps):
            return self._to_step(
                self.step + 1,
                GATES_PASSED,
                f"every gate held at {self.weight:g}%: advanced to {self.steps[self.step + 1]:g}%",
            )
        if self.config.on_complete == "promote":
            return self._move(PROMOTED, GATES_PASSED, "every gate held at the last step")
        self.why = "every gate held at the last step: holding (on_complete: hold)"
        return None

    def _follow(self, fleet: FleetState) -> Transition | None:
        """decision: prometheus — a rollback decided by any sidecar applies here too; a
        joining sidecar takes the fleet's state; a sidecar behind the fleet catches up."""
        previous = self.rollbacks_seen
        self.rollbacks_seen = (
            fleet.rollbacks if previous is None else min(previous, fleet.rollbacks)
        )
        new_rollback = previous is not None and fleet.rollbacks > previous
        if self.state == PAUSED:
            return None
        if self.state != ROLLED_BACK and (new_rollback or (not self.joined and fleet.rolled_back)):
            self.rollbacks_seen = fleet.rollbacks
            return self._move(ROLLED_BACK, FLEET, "another sidecar of the fleet rolled back")
        if self.state == ROLLED_BACK:
            return None
        if fleet.promoted and self.state != PROMOTED:
            return self._move(PROMOTED, FLEET, "the fleet promoted the candidate")
        if fleet.weight is None or self.state == PROMOTED:
            return None
        ahead = [index for index, weight in enumerate(self.steps) if weight <= fleet.weight]
        if ahead and ahead[-1] > self.step:
            verb = "joined" if not self.joined else "caught up with"
            return self._to_step(
                ahead[-1], FLEET, f"{verb} the fleet at {self.steps[ahead[-1]]:g}%"
            )
        return None

    def act(self, action: str) -> Transition | None:
        """An admin action; None when it does not apply in the current state."""
        if self.kind not in APPLIES_TO[action]:
            return None
        if action == PAUSE:
            return self._move(PAUSED, PAUSE, f"paused by an admin at {self.weight:g}%")
        if action == PROMOTE:
            return self._move(PROMOTED, PROMOTE, "promoted by an admin")
        if action == ABORT:
            return self._move(ROLLED_BACK, ABORT, "aborted by an admin")
        if self.state == ROLLED_BACK:
            self.rollbacks_seen = None
            return self._move(PENDING, RESUME, "resumed by an admin: starting over", -1)
        if self.step < 0:
            return self._move(PENDING, RESUME, "resumed by an admin")
        return self._to_step(self.step, RESUME, f"resumed by an admin at {self.weight:g}%")

    def applicable(self) -> list[str]:
        """The admin actions that apply now."""
        return [action for action in ACTIONS if self.kind in APPLIES_TO[action]]

    def status(self) -> dict[str, object]:
        """For /status: state, weight, gates (value vs limit, verdict, why), history."""
        return {
            "state": self.state,
            "weight": self.weight,
            "steps": list(self.steps),
            "decision": self.config.decision,
            "step_age_seconds": round(self.step_age, 3),
            "min_duration_seconds": self.config.min_duration,
            "min_calls": self.config.min_calls,
            "why": self.why,
            "decision_error": self.decision_error,
            "gates": {gate.gate: gate.as_dict() for gate in self.gates},
            "actions": self.applicable(),
            "transitions": [
                {
                    "from": t.from_state,
                    "to": t.to_state,
                    "reason": t.reason,
                    "detail": t.detail,
                    "at_unix": round(t.at_unix, 3),
                }
                for t in self.history
            ],
        }
