"""The experiments' metrics, on the Prometheus sink's registry (defined in metric_defs.py)."""

from __future__ import annotations

import contextlib
from typing import Any

from sidecar.experiments.assignment import Experiment
from sidecar.experiments.feedback import CallArm, Feedback
from sidecar.experiments.shadow import Half
from sidecar.record import CallRecord
from sidecar.telemetry import metric_defs as defs
from sidecar.telemetry.prometheus import PrometheusSink

AGREEMENT_SAME = "same"
AGREEMENT_DIFFERENT = "different"
SHADOW_FAILED = "shadow_failed"
CONTROL_FAILED = "control_failed"
AGREEMENTS = (AGREEMENT_SAME, AGREEMENT_DIFFERENT, SHADOW_FAILED, CONTROL_FAILED)


class ExperimentMetrics:
    """Updates the experiment, shadow, feedback and audit metrics of one Prometheus sink."""

    def __init__(self, sink: PrometheusSink) -> None:
        self._sink = sink
        self._trips = sink.metric(defs.STOPLOSS_TRIPS)
        self._active = sink.metric(defs.EXPERIMENT_ACTIVE)
        self._latency = sink.metric(defs.SHADOW_LATENCY_DELTA)
        self._ttft = sink.metric(defs.SHADOW_TTFT_DELTA)
        self._tokens = sink.metric(defs.SHADOW_TOKEN_DELTA)
        self._cost = sink.metric(defs.SHADOW_COST_DELTA)
        self._length = sink.metric(defs.SHADOW_LENGTH_RATIO)
        self._pairs = sink.metric(defs.SHADOW_PAIRS)
        self._paired_duration = sink.metric(defs.SHADOW_PAIRED_DURATION)
        self._paired_ttft = sink.metric(defs.SHADOW_PAIRED_TTFT)
        self._paired_tokens = sink.metric(defs.SHADOW_PAIRED_TOKENS)
        self._paired_cost = sink.metric(defs.SHADOW_PAIRED_COST)
        self._skipped = sink.metric(defs.SHADOW_SKIPPED)
        self._feedback = sink.metric(defs.FEEDBACK)
        self._edit = sink.metric(defs.EDIT_SECONDS)
        self._score = sink.metric(defs.FEEDBACK_SCORE)
        self._audit = sink.metric(defs.AUDIT_SAMPLES)

    def configured(self, experiment: Experiment) -> None:
        """A (new) experiment: its active gauge, and its trip and shadow pair counters at 0
        (so `increase()` sees the first one)."""
        self._active.labels(experiment.name).set(1 if experiment.active else 0)
        if experiment.stop_loss is not None:
            for reason in experiment.stop_loss.reasons():
                self._trips.labels(experiment.name, reason)
        if experiment.shadow:
            for arm in experiment.candidates:
                for agreement in AGREEMENTS:
                    self._pairs.labels(experiment.name, arm.variant, agreement)

    def removed(self, name: str) -> None:
        """An experiment no longer configured: its active gauge goes (counters stay)."""
        with contextlib.suppress(KeyError):
            self._active.remove(name)

    def tripped(self, experiment: Experiment, reason: str) -> None:
        """A stop-loss trip."""
        self._trips.labels(experiment.name, reason).inc()
        self._active.labels(experiment.name).set(1 if experiment.active else 0)

    def resumed(self, experiment: Experiment) -> None:
        """An admin resumed the experiment."""
        self._active.labels(experiment.name).set(1 if experiment.active else 0)

    def shadow_skipped(self, experiment: str, variant: str, reason: str) -> None:
        """A call was not copied to a shadow arm (its limit was reached)."""
        self._skipped.labels(experiment, variant, reason).inc()

    def pair(self, experiment: str, variant: str, control: Half, shadow: Half) -> None:
        """The deltas and agreement of one completed shadow pair."""
        arm = (experiment, variant)
        if not control.ok:
            self._pairs.labels(*arm, CONTROL_FAILED).inc()
            return
        if not shadow.ok:
            self._pairs.labels(*arm, SHADOW_FAILED).inc()
            return
        same = shadow.output_digest == control.output_digest
        self._pairs.labels(*arm, AGREEMENT_SAME if same else AGREEMENT_DIFFERENT).inc()
        self._latency.labels(*arm).observe(shadow.duration - control.duration)
        self._sides(self._paired_duration, arm, control.duration, shadow.duration)
        if control.time_to_first_chunk is not None and shadow.time_to_first_chunk is not None:
            delta = shadow.time_to_first_chunk - control.time_to_first_chunk
            self._ttft.labels(*arm).observe(delta)
            self._sides(
                self._paired_ttft, arm, control.time_to_first_chunk, shadow.time_to_first_chunk
            )
        for token_type, theirs, ours in (
            ("input", control.input_tokens, shadow.input_tokens),
            ("output", control.output_tokens, shadow.output_tokens),
        ):
            if ours is not None and theirs is not None:
                self._tokens.labels(*arm, token_type).observe(ours - theirs)
                self._sides(self._paired_tokens, arm, theirs, ours, token_type)
        if control.cost_usd is not None and shadow.cost_usd is not None:
            self._cost.labels(*arm).observe(shadow.cost_usd - control.cost_usd)
            self._sides(self._paired_cost, arm, control.cost_usd, shadow.cost_usd)
        if control.output_chars:
            self._length.labels(*arm).observe(shadow.output_chars / control.output_chars)

    @staticmethod
    def _sides(
        counter: Any, arm: tuple[str, str], control: float, shadow: float, *extra: str
    ) -> None:
        """Add each side's value of a pair to its `side` series."""
        counter.labels(*arm, "control", *extra).inc(max(0.0, control))
        counter.labels(*arm, "shadow", *extra).inc(max(0.0, shadow))

    def _call_labels(self, call: CallArm) -> tuple[str, str, str, str]:
        model = self._sink.request_models.resolve(call.model)
        return call.provider, model, call.experiment, call.variant

    def feedback(self, call: CallArm, feedback: Feedback) -> None:
        """One feedback message about a call."""
        labels = self._call_labels(call)
        self._feedback.labels(*labels, feedback.outcome).inc()
        if feedback.edit_seconds is not None:
            self._edit.labels(*labels).observe(feedback.edit_seconds)
        if feedback.score is not None:
            self._score.labels(*labels).observe(feedback.score)

    def audited(self, record: CallRecord) -> None:
        """A call written to the audit sample."""
        call = CallArm(
            record.provider_name,
            record.request.request_model or "",
            record.experiment,
            record.variant,
        )
        self._audit.labels(*self._call_labels(call)).inc()
