"""The experiments' metrics (defined in telemetry/conventions.py), written through the sidecar's
MetricRegistry."""

from __future__ import annotations

from sidecar.experiments.assignment import Experiment
from sidecar.experiments.feedback import CallArm, Feedback
from sidecar.experiments.rollout import PAUSED, PENDING, PROMOTED, ROLLED_BACK, step_state
from sidecar.experiments.shadow import Half
from sidecar.record import CallRecord
from sidecar.telemetry import conventions as defs
from sidecar.telemetry.conventions import Instrument
from sidecar.telemetry.registry import MetricRegistry

AGREEMENT_SAME = "same"
AGREEMENT_DIFFERENT = "different"
SHADOW_FAILED = "shadow_failed"
CONTROL_FAILED = "control_failed"
AGREEMENTS = (AGREEMENT_SAME, AGREEMENT_DIFFERENT, SHADOW_FAILED, CONTROL_FAILED)


class ExperimentMetrics:
    """Updates the experiment, shadow, feedback and audit metrics."""

    def __init__(self, metrics: MetricRegistry) -> None:
        self._metrics = metrics

    def configured(self, experiment: Experiment) -> None:
        """A (new) experiment: its active gauge, and its trip and shadow pair counters at 0
        (so `increase()` sees the first one)."""
        self._set_active(experiment)
        if experiment.stop_loss is not None:
            for reason in experiment.stop_loss.reasons():
                self._metrics.declare(defs.STOPLOSS_TRIPS, (experiment.name, reason))
        if experiment.shadow:
            for arm in experiment.candidates:
                for agreement in AGREEMENTS:
                    self._metrics.declare(
                        defs.SHADOW_PAIRS, (experiment.name, arm.variant, agreement)
                    )

    def removed(self, name: str) -> None:
        """An experiment no longer configured: its active gauge goes (counters stay)."""
        self._metrics.remove(defs.EXPERIMENT_ACTIVE, (name,))
        for gauge in (
            defs.ROLLOUT_WEIGHT,
            defs.ROLLOUT_STEP_STARTED,
            defs.ROLLOUT_STEP_MIN_DURATION,
        ):
            self._metrics.remove(gauge, (name,))

    def tripped(self, experiment: Experiment, reason: str) -> None:
        """A stop-loss trip."""
        self._metrics.inc(defs.STOPLOSS_TRIPS, (experiment.name, reason))
        self._set_active(experiment)

    def resumed(self, experiment: Experiment) -> None:
        """An admin resumed the experiment."""
        self._set_active(experiment)

    def _set_active(self, experiment: Experiment) -> None:
        self._metrics.set(defs.EXPERIMENT_ACTIVE, (experiment.name,), 1 if experiment.active else 0)

    def rollout(self, experiment: Experiment) -> None:
        """A rollout's weight, state (1 for the current, 0 for the others) and step start."""
        rollout = experiment.rollout
        if rollout is None:
            return
        name = experiment.name
        metrics = self._metrics
        metrics.set(defs.ROLLOUT_WEIGHT, (name,), rollout.weight)
        states = (PENDING, *(step_state(w) for w in rollout.steps), PROMOTED, ROLLED_BACK, PAUSED)
        for state in states:
            metrics.set(defs.ROLLOUT_STATE, (name, state), 1 if state == rollout.state else 0)
        metrics.set(defs.ROLLOUT_STEP_STARTED, (name,), rollout.step_started_unix)
        metrics.set(defs.ROLLOUT_STEP_MIN_DURATION, (name,), rollout.config.min_duration)
        self._set_active(experiment)

    def rollout_removed(self, experiment: Experiment) -> None:
        """A rollout no longer configured (or replaced): its gauges go (counters stay), so no
        alert reads a state that is no longer anyone's."""
        rollout = experiment.rollout
        if rollout is None:
            return
        name = experiment.name
        metrics = self._metrics
        states = (PENDING, *(step_state(w) for w in rollout.steps), PROMOTED, ROLLED_BACK, PAUSED)
        for state in states:
            metrics.remove(defs.ROLLOUT_STATE, (name, state))
        for gate in rollout.gates:
            metrics.remove(defs.ROLLOUT_GATE_VALUE, (name, gate.gate))
            metrics.remove(defs.ROLLOUT_GATE_LIMIT, (name, gate.gate))
        for gauge in (
            defs.ROLLOUT_WEIGHT,
            defs.ROLLOUT_STEP_STARTED,
            defs.ROLLOUT_STEP_MIN_DURATION,
        ):
            metrics.remove(gauge, (name,))

    def rollout_gates(self, experiment: Experiment) -> None:
        """The gates' values and limits of the last evaluation (a value not measured: none)."""
        rollout = experiment.rollout
        if rollout is None:
            return
        for gate in rollout.gates:
            labels = (experiment.name, gate.gate)
            self._metrics.set(defs.ROLLOUT_GATE_LIMIT, labels, gate.limit)
            if gate.value is None:
                self._metrics.remove(defs.ROLLOUT_GATE_VALUE, labels)
            else:
                self._metrics.set(defs.ROLLOUT_GATE_VALUE, labels, gate.value)

    def rollout_declared(self, experiment: Experiment) -> None:
        """A (new) rollout: its decision error counter at 0."""
        self._metrics.declare(defs.ROLLOUT_DECISION_ERRORS, (experiment.name,))

    def rollout_transition(
        self, experiment: Experiment, from_state: str, to_state: str, reason: str
    ) -> None:
        """A rollout changed state."""
        labels = (experiment.name, from_state, to_state, reason)
        self._metrics.inc(defs.ROLLOUT_TRANSITIONS, labels)
        self.rollout(experiment)

    def rollout_decision_error(self, experiment: Experiment) -> None:
        """An evaluation could not read the fleet's verdict."""
        self._metrics.inc(defs.ROLLOUT_DECISION_ERRORS, (experiment.name,))

    def shadow_skipped(self, experiment: str, variant: str, reason: str) -> None:
        """A call was not copied to a shadow arm (its limit was reached)."""
        self._metrics.inc(defs.SHADOW_SKIPPED, (experiment, variant, reason))

    def pair(self, experiment: str, variant: str, control: Half, shadow: Half) -> None:
        """The deltas and agreement of one completed shadow pair."""
        metrics = self._metrics
        arm = (experiment, variant)
        if not control.ok:
            metrics.inc(defs.SHADOW_PAIRS, (*arm, CONTROL_FAILED))
            return
        if not shadow.ok:
            metrics.inc(defs.SHADOW_PAIRS, (*arm, SHADOW_FAILED))
            return
        same = shadow.output_digest == control.output_digest
        metrics.inc(defs.SHADOW_PAIRS, (*arm, AGREEMENT_SAME if same else AGREEMENT_DIFFERENT))
        metrics.observe(defs.SHADOW_LATENCY_DELTA, arm, shadow.duration - control.duration)
        self._sides(defs.SHADOW_PAIRED_DURATION, arm, control.duration, shadow.duration)
        if control.time_to_first_chunk is not None and shadow.time_to_first_chunk is not None:
            delta = shadow.time_to_first_chunk - control.time_to_first_chunk
            metrics.observe(defs.SHADOW_TTFT_DELTA, arm, delta)
            self._sides(
                defs.SHADOW_PAIRED_TTFT,
                arm,
                control.time_to_first_chunk,
                shadow.time_to_first_chunk,
            )
        for token_type, theirs, ours in (
            ("input", control.input_tokens, shadow.input_tokens),
            ("output", control.output_tokens, shadow.output_tokens),
        ):
            if ours is not None and theirs is not None:
                metrics.observe(defs.SHADOW_TOKEN_DELTA, (*arm, token_type), ours - theirs)
                self._sides(defs.SHADOW_PAIRED_TOKENS, arm, theirs, ours, token_type)
        if control.cost_usd is not None and shadow.cost_usd is not None:
            metrics.observe(defs.SHADOW_COST_DELTA, arm, shadow.cost_usd - control.cost_usd)
            self._sides(defs.SHADOW_PAIRED_COST, arm, control.cost_usd, shadow.cost_usd)
        if control.output_chars:
            ratio = shadow.output_chars / control.output_chars
            metrics.observe(defs.SHADOW_LENGTH_RATIO, arm, ratio)

    def _sides(
        self, counter: Instrument, arm: tuple[str, str], control: float, shadow: float, *extra: str
    ) -> None:
        """Add each side's value of a pair to its `side` series."""
        self._metrics.inc(counter, (*arm, "control", *extra), max(0.0, control))
        self._metrics.inc(counter, (*arm, "shadow", *extra), max(0.0, shadow))

    def _call_labels(self, call: CallArm) -> tuple[str, str, str, str]:
        model = self._metrics.request_models.resolve(call.model)
        return call.provider, model, call.experiment, call.variant

    def feedback(self, call: CallArm, feedback: Feedback) -> None:
        """One feedback message about a call."""
        labels = self._call_labels(call)
        self._metrics.inc(defs.FEEDBACK, (*labels, feedback.outcome))
        if feedback.edit_seconds is not None:
            self._metrics.observe(defs.EDIT_SECONDS, labels, feedback.edit_seconds)
        if feedback.score is not None:
            self._metrics.observe(defs.FEEDBACK_SCORE, labels, feedback.score)

    def audited(self, record: CallRecord) -> None:
        """A call written to the audit sample."""
        call = CallArm(
            record.provider_name,
            record.request.request_model or "",
            record.experiment,
            record.variant,
        )
        self._metrics.inc(defs.AUDIT_SAMPLES, self._call_labels(call))
