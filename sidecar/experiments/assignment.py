"""Which arm a call gets: the experiment it matches (one dict lookup) and a weighted choice.

A call with the experiment's key header is placed by a hash of (experiment name, key), so
every pod puts the same key in the same arm; the key itself is never stored. Without the
header the choice is random per call. A rolled-back candidate's share goes to the control.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from sidecar.config.experiments import CONTROL, WEIGHT_TOTAL, ExperimentConfig
from sidecar.experiments.rollout import ROLLED_BACK, Rollout
from sidecar.experiments.stoploss import StopLoss, Trip

_HASH_SCALE = WEIGHT_TOTAL / 2**64


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm of an experiment: its variant label, the model it asks for, where it goes."""

    variant: str
    model: str
    # None: the upstream the call was routed to.
    upstream: str | None
    weight: float

    @property
    def is_control(self) -> bool:
        """Whether this arm is the control (the app's own request, unchanged)."""
        return self.variant == CONTROL


def key_position(experiment: str, key: str) -> float:
    """Where a key falls in [0, 100): a hash of the experiment name and the key."""
    digest = hashlib.blake2b(f"{experiment}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") * _HASH_SCALE


class Experiment:
    """A configured experiment, ready to assign calls; rolled-back arms get no traffic."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.name = config.name
        self.mode = config.mode
        self.shadow = config.mode == "shadow"
        self.path = config.match.path
        self.upstream = config.match.upstream
        self.key_header = config.key_header
        self.control = Arm(CONTROL, config.match.model, None, config.control.weight)
        self.candidates = tuple(
            Arm(candidate.variant or "", candidate.model, candidate.upstream, candidate.weight)
            for candidate in config.candidates
        )
        self.arms = {arm.variant: arm for arm in (self.control, *self.candidates)}
        self.rolled_back: frozenset[str] = frozenset()
        # A rollout judges its candidate with its own gates (the stop-loss limits), per step.
        self.rollout = Rollout(config.rollout) if config.rollout is not None else None
        self.stop_loss = (
            StopLoss(config.stop_loss)
            if config.stop_loss is not None and self.rollout is None
            else None
        )
        # Trips since the config was loaded or the experiment resumed, oldest first.
        self.trips: list[Trip] = []
        self._bounds: tuple[float, ...] = ()
        self._by_bound: tuple[Arm, ...] = ()
        self._live: tuple[Arm, ...] = ()
        self._set_weights()

    def _set_weights(self) -> None:
        live = tuple(arm for arm in self.candidates if arm.variant not in self.rolled_back)
        self._live = live
        bounds: list[float] = []
        arms: list[Arm] = []
        total = 0.0
        for arm in live:
            if arm.weight > 0:
                total += arm.weight
                bounds.append(total)
                arms.append(arm)
        self._bounds, self._by_bound = tuple(bounds), tuple(arms)

    def follow_rollout(self) -> None:
        """Give the candidate the rollout's current share (a rolled-back one gets none)."""
        if self.rollout is None:
            return
        arm = replace(self.candidates[0], weight=self.rollout.weight)
        self.candidates = (arm,)
        self.arms[arm.variant] = arm
        rolled_back = self.rollout.state == ROLLED_BACK
        self.rolled_back = frozenset({arm.variant}) if rolled_back else frozenset()
        self._set_weights()

    @property
    def active(self) -> bool:
        """Whether any candidate still takes traffic (not every one was rolled back)."""
        return bool(self._live)

    @property
    def live(self) -> set[str]:
        """The variants of the candidates that still take traffic."""
        return {arm.variant for arm in self._live}

    def weights(self) -> dict[str, float]:
        """The effective weights now, by variant (a rolled-back candidate's go to the control)."""
        result = {arm.variant: arm.weight for arm in self._live}
        if self.shadow:
            return {CONTROL: WEIGHT_TOTAL, **result}
        return {CONTROL: WEIGHT_TOTAL - sum(result.values()), **result}

    def roll_back(self, trip: Trip) -> None:
        """Give the tripped candidate weight 0 until `resume` (or a new config)."""
        self.trips.append(trip)
        self.rolled_back = self.rolled_back | {trip.variant}
        self._set_weights()

    def resume(self) -> None:
        """Restore every candidate's configured weight and judge them afresh."""
        self.rolled_back = frozenset()
        self.trips = []
        if self.stop_loss is not None:
            self.stop_loss.reset()
        self._set_weights()

    def position(self, headers: Mapping[str, str], rng: random.Random) -> float:
        """The call's place in [0, 100): by its key header when present, else random."""
        if self.key_header is not None:
            key = headers.get(self.key_header)
            if key:
                return key_position(self.name, key)
        return rng.random() * WEIGHT_TOTAL

    def choose(self, position: float) -> Arm:
        """Split mode: the arm whose share holds `position` (the control past the candidates)."""
        index = bisect_right(self._bounds, position)
        return self._by_bound[index] if index < len(self._by_bound) else self.control

    def shadows(self, position: float) -> list[Arm]:
        """Shadow mode: the candidates this call is copied to (each by its own percentage)."""
        return [arm for arm in self._live if position < arm.weight]


class ExperimentTable:
    """The configured experiments, found by requested model in O(1)."""

    def __init__(self, experiments: Iterable[Experiment]) -> None:
        self.by_name: dict[str, Experiment] = {}
        self._by_model: dict[str, list[Experiment]] = {}
        for experiment in experiments:
            self.by_name[experiment.name] = experiment
            self._by_model.setdefault(experiment.control.model, []).append(experiment)
        # Most specific first: path and upstream, then one of them, then neither.
        for group in self._by_model.values():
            group.sort(key=lambda e: (e.path is None) + (e.upstream is None))

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def match(self, model: str | None, path: str, upstream: str) -> Experiment | None:
        """The experiment a call to `model` on `path` via `upstream` takes part in, if any."""
        if model is None:
            return None
        group = self._by_model.get(model)
        if group is None:
            return None
        for experiment in group:
            if (experiment.path is None or experiment.path == path) and (
                experiment.upstream is None or experiment.upstream == upstream
            ):
                return experiment
        return None
