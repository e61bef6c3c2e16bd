"""The rollouts of a running sidecar: evaluated on their interval, off the call path.

Each experiment with a `rollout:` is evaluated every `evaluation_interval`, at the wall clock's
multiples of it (so the pods of a fleet evaluate at the same instants): its gates over this
sidecar's own calls (decision: local) or the fleet's verdict from Prometheus (decision:
prometheus, fleet.py); the state machine (rollout.py) moves; the experiment's candidate share
follows; the transition is counted and logged once. Admin actions (`act`) go the same way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable

from sidecar.config.experiments import StopLossConfig
from sidecar.experiments.assignment import Experiment
from sidecar.experiments.fleet import FleetVerdict
from sidecar.experiments.gates import judge
from sidecar.experiments.metrics import ExperimentMetrics
from sidecar.experiments.rollout import Reading, Rollout, Transition
from sidecar.logs import LogThrottle

log = logging.getLogger("sidecar.experiments.rollout")

# The evaluation loop wakes this often at most (a rollout is evaluated on its own interval).
TICK_SECONDS = 0.1
# A fleet verdict that cannot be read is logged at most once a minute per rollout (it is
# counted every time, and /status says so).
ERROR_LOG_INTERVAL_SECONDS = 60.0


def limits_of(experiment: Experiment) -> StopLossConfig:
    """The gates' limits: the experiment's stop_loss section, or its defaults."""
    return experiment.config.stop_loss or StopLossConfig()


class Rollouts:
    """Evaluates every rollout on its interval; applies admin actions."""

    def __init__(
        self,
        metrics: ExperimentMetrics,
        experiments: Callable[[], Iterable[Experiment]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._experiments = experiments
        self._clock = clock
        # Fleet readers by experiment name, and when each rollout is next due.
        self._fleets: dict[str, tuple[Rollout, FleetVerdict]] = {}
        self._due: dict[int, float] = {}
        self._retired: list[FleetVerdict] = []
        self._errors_logged = LogThrottle(ERROR_LOG_INTERVAL_SECONDS)

    def configured(self, experiment: Experiment) -> None:
        """A new or changed experiment with a rollout: its metrics and fleet reader."""
        rollout = experiment.rollout
        if rollout is None:
            return
        self._metrics.rollout_declared(experiment)
        prometheus = rollout.config.prometheus
        if rollout.config.decision == "prometheus" and prometheus is not None:
            self._fleets[experiment.name] = (rollout, FleetVerdict(prometheus))
        else:
            # Local: this sidecar is the fleet; its state is known from the start.
            self._metrics.rollout(experiment)
        experiment.follow_rollout()

    def removed(self, experiment: Experiment) -> None:
        """An experiment with a rollout left the config (or was replaced by a changed one)."""
        if experiment.rollout is None:
            return
        self._metrics.rollout_removed(experiment)
        fleet = self._fleets.get(experiment.name)
        if fleet is not None and fleet[0] is experiment.rollout:
            del self._fleets[experiment.name]
            self._retired.append(fleet[1])

    async def run(self) -> None:
        """Evaluate each rollout when it is due, until cancelled."""
        while True:
            await self.evaluate_due()
            await asyncio.sleep(TICK_SECONDS)

    async def evaluate_due(self) -> None:
        """Evaluate the rollouts whose interval has passed."""
        while self._retired:
            await self._retired.pop().close()
        now = self._clock()
        rollouts = [e for e in self._experiments() if e.rollout is not None]
        live = {id(e.rollout) for e in rollouts}
        self._due = {key: due for key, due in self._due.items() if key in live}
        for experiment in rollouts:
            rollout = experiment.rollout
            assert rollout is not None
            due = self._due.get(id(rollout))
            if due is not None and now < due:
                continue
            # On the wall clock's multiples of the interval: every pod of a fleet (clocks kept by
            # NTP) evaluates at the same instants, reads the same scrapes and moves together.
            interval = rollout.config.evaluation_interval
            self._due[id(rollout)] = (math.floor(now / interval) + 1) * interval
            try:
                await self.evaluate(experiment)
            except Exception:
                # A bug in one evaluation must not stop the others (nor the next one).
                log.exception("rollout evaluation of %s failed", experiment.name)

    async def evaluate(self, experiment: Experiment) -> Transition | None:
        """One evaluation of one rollout."""
        rollout = experiment.rollout
        assert rollout is not None
        variant = experiment.candidates[0].variant
        limits = limits_of(experiment)
        fleet = self._fleets.get(experiment.name)
        if fleet is not None and fleet[0] is rollout:
            reading = await fleet[1].read(
                experiment.name, variant, rollout.step_age, limits, rollout.config.min_calls
            )
        else:
            candidate, control = rollout.evidence.arms(variant)
            reading = Reading(gates=judge(candidate, control, limits, rollout.config.min_calls))
        was_joined = rollout.joined
        transition = rollout.evaluate(reading)
        self._metrics.rollout_gates(experiment)
        if reading.error is not None:
            self._metrics.rollout_decision_error(experiment)
        if reading.error is not None and self._errors_logged.allow(experiment.name):
            log.warning(
                "rollout %s holds at %g%%: %s",
                experiment.name,
                rollout.weight,
                reading.error,
                extra={"experiment": experiment.name, "weight": rollout.weight},
            )
        if transition is not None:
            self.applied(experiment, transition)
        elif rollout.joined and not was_joined:
            self._metrics.rollout(experiment)
        return transition

    def applied(self, experiment: Experiment, transition: Transition) -> None:
        """A transition happened: the share follows, counted and logged once."""
        experiment.follow_rollout()
        self._metrics.rollout_transition(
            experiment, transition.from_state, transition.to_state, transition.reason
        )
        rollout = experiment.rollout
        weight = rollout.weight if rollout is not None else 0.0
        level = logging.WARNING if transition.to_state == "rolled_back" else logging.INFO
        log.log(
            level,
            "rollout %s: %s -> %s (%s): %s",
            experiment.name,
            transition.from_state,
            transition.to_state,
            transition.reason,
            transition.detail,
            extra={
                "experiment": experiment.name,
                "from_state": transition.from_state,
                "to_state": transition.to_state,
                "reason": transition.reason,
                "weight": weight,
            },
        )

    def act(self, experiment: Experiment, action: str) -> Transition | None:
        """An admin action on a rollout; None when it does not apply in its state."""
        rollout = experiment.rollout
        if rollout is None:
            return None
        transition = rollout.act(action)
        if transition is not None:
            self.applied(experiment, transition)
            # Evaluate again soon, not a whole interval later.
            self._due.pop(id(rollout), None)
        return transition

    async def close(self) -> None:
        """Close the fleet readers' HTTP sessions."""
        for fleet in [*self._retired, *(reader for _, reader in self._fleets.values())]:
            await fleet.close()
        self._retired.clear()
