"""The experiments of a running sidecar: assignment on the call path, then (off it, as the
`experiments` stage) the stop-loss, shadow pairs and the audit sample; reconfigured live on a
config reload.

The proxy calls `assign` for each call (O(1): one dict lookup when experiments exist); its
`Decision` says where the call goes, its arm and its shadow copies (started by
`ShadowRunner`, shadow.py). The pipeline runs this object as a stage after cost and
confidence, which the stop-loss, the pairs and the audit sample read.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sidecar.config.experiments import CONTROL
from sidecar.config.models import SidecarConfig
from sidecar.experiments.assignment import Arm, Experiment, ExperimentTable
from sidecar.experiments.audit import AuditLog
from sidecar.experiments.decision import Decision, ShadowCopy
from sidecar.experiments.feedback import (
    CallArm,
    Feedback,
    FeedbackReply,
    FeedbackStore,
    handle_feedback,
)
from sidecar.experiments.limits import ArmLimiter
from sidecar.experiments.metrics import ExperimentMetrics
from sidecar.experiments.rewrite import ask_for_model
from sidecar.experiments.rollout import ABORT, PAUSE, PROMOTE, RESUME
from sidecar.experiments.rollouts import Rollouts
from sidecar.experiments.shadow import PairBook
from sidecar.forward.exchange import Outbound
from sidecar.forward.routing import Route, Upstream
from sidecar.record import (
    CLIENT_CANCELLED,
    NEED_AUDIT,
    NEED_OUTPUT,
    NEED_REQUEST_BODY,
    CallRecord,
    RequestInfo,
)
from sidecar.telemetry.registry import MetricRegistry

log = logging.getLogger("sidecar.experiments")

# An audited call keeps its request and its output until the audit line is written.
_AUDITED = NEED_AUDIT | NEED_OUTPUT | NEED_REQUEST_BODY


@dataclass(frozen=True, slots=True)
class ControlReply:
    """The answer to a control endpoint: HTTP status and JSON body."""

    status: int
    body: dict[str, Any]


class Experiments:
    """Assignment, stop-loss, shadow pairs, feedback and audit for one sidecar."""

    name = "experiments"

    def __init__(
        self,
        config: SidecarConfig,
        metrics: MetricRegistry,
        upstreams: Mapping[str, Upstream],
    ) -> None:
        self.metrics = ExperimentMetrics(metrics)
        self.table = ExperimentTable(())
        self.feedback: FeedbackStore | None = None
        self.audit: AuditLog | None = None
        self.pairs = PairBook(1000)
        self._upstreams: Mapping[str, Upstream] = upstreams
        self._limiters: dict[tuple[str, str], ArmLimiter] = {}
        self._rng = random.Random()
        self.rollouts = Rollouts(self.metrics, lambda: self.table.by_name.values())
        self.reconfigure(config, upstreams)

    # Configuration --------------------------------------------------------------------

    def reconfigure(self, config: SidecarConfig, upstreams: Mapping[str, Upstream]) -> None:
        """Take a new config: unchanged experiments keep their state (a rolled-back
        candidate stays rolled back); changed or new ones start afresh."""
        previous = self.table.by_name
        experiments = []
        for item in config.experiments:
            kept = previous.get(item.name)
            if kept is not None and kept.config == item:
                experiments.append(kept)
                continue
            if kept is not None:
                self.rollouts.removed(kept)
            experiment = Experiment(item)
            experiments.append(experiment)
            self.metrics.configured(experiment)
            self.rollouts.configured(experiment)
            self._limiters = {k: v for k, v in self._limiters.items() if k[0] != item.name}
        names = {item.name for item in config.experiments}
        for name, experiment in previous.items():
            if name not in names:
                self.metrics.removed(name)
                self.rollouts.removed(experiment)
        self.table = ExperimentTable(experiments)
        self._upstreams = upstreams
        pending = max((item.shadow.max_pending_pairs for item in config.experiments), default=0)
        self.pairs.capacity = max(pending, 1)

        feedback = config.feedback
        if not feedback.enabled:
            self.feedback = None
        elif self.feedback is None:
            self.feedback = FeedbackStore(feedback.max_request_ids)
        else:
            self.feedback.capacity = feedback.max_request_ids
        audit = config.audit
        if self.audit is not None and self.audit.config != audit:
            self.audit.close()
            self.audit = None
        if self.audit is None and audit.sample_rate > 0:
            self.audit = AuditLog(audit)

    # On the call path -----------------------------------------------------------------

    def assign(
        self, request_id: str, outbound: Outbound, headers: Mapping[str, str]
    ) -> Decision | None:
        """Assign the call to an arm, remember it for feedback, sample it for the audit;
        None when nothing about the call changes."""
        decision = None
        route = outbound.route
        if self.table.by_name:
            model = outbound.info.request_model
            experiment = self.table.match(model, route.path, route.upstream.name)
            if experiment is not None:
                decision = self._assign(experiment, request_id, outbound, headers)
        if self.feedback is not None:
            sent, experiment_name, variant = outbound, "", ""
            if decision is not None:
                sent, experiment_name, variant = (
                    decision.outbound,
                    decision.experiment,
                    decision.variant,
                )
            call = CallArm(
                route.upstream.provider or route.protocol.provider_name,
                sent.info.request_model or "",
                experiment_name,
                variant,
            )
            self.feedback.remember(request_id, call)
        if self.audit is not None and self.audit.sample():
            if decision is None:
                return Decision(outbound, needs=_AUDITED)
            return replace(decision, needs=decision.needs | _AUDITED)
        return decision

    def _assign(
        self,
        experiment: Experiment,
        request_id: str,
        outbound: Outbound,
        headers: Mapping[str, str],
    ) -> Decision:
        position = experiment.position(headers, self._rng)
        if experiment.shadow:
            copies = self._shadow_copies(experiment, position, outbound)
            if not copies:
                return Decision(outbound, experiment.name, CONTROL)
            return Decision(
                outbound,
                experiment.name,
                CONTROL,
                pair_id=request_id,
                needs=NEED_OUTPUT,
                shadows=copies,
            )
        arm = experiment.choose(position)
        target = self._target(outbound.route, arm)
        rewritten = None
        if target is not None and not arm.is_control:
            rewritten = ask_for_model(outbound, target, arm.model)
        if rewritten is None:
            return Decision(outbound, experiment.name, CONTROL)
        return Decision(rewritten, experiment.name, arm.variant)

    def _target(self, route: Route, arm: Arm) -> Route | None:
        """Where an arm's calls go: the routed upstream or the arm's own (same protocol)."""
        if arm.upstream is None or arm.upstream == route.upstream.name:
            return route
        upstream = self._upstreams.get(arm.upstream)
        if upstream is None or upstream.protocol is not route.protocol:
            return None
        return Route(upstream, route.protocol, route.path)

    def _shadow_copies(
        self, experiment: Experiment, position: float, outbound: Outbound
    ) -> tuple[ShadowCopy, ...]:
        """The shadow copies this call gets: each candidate it falls in whose limiter has room."""
        copies = []
        for arm in experiment.shadows(position):
            target = self._target(outbound.route, arm)
            if target is None:
                continue
            rewritten = ask_for_model(outbound, target, arm.model)
            if rewritten is None:
                continue
            limiter = self._limiter(experiment, arm)
            refused = limiter.acquire()
            if refused is not None:
                self.metrics.shadow_skipped(experiment.name, arm.variant, refused)
                continue
            copies.append(ShadowCopy(arm, limiter, rewritten))
        return tuple(copies)

    def _limiter(self, experiment: Experiment, arm: Arm) -> ArmLimiter:
        key = (experiment.name, arm.variant)
        limiter = self._limiters.get(key)
        if limiter is None:
            limits = experiment.config.shadow
            limiter = self._limiters[key] = ArmLimiter(
                limits.max_concurrency, limits.max_per_second
            )
        return limiter

    # Off the call path ----------------------------------------------------------------

    def needs(self, request: RequestInfo, body: Any) -> int:
        """Nothing beyond what `assign` decided for the call."""
        return 0

    def __call__(self, record: CallRecord) -> None:
        """The stage: stop-loss windows, shadow pairs, the audit sample."""
        if record.experiment:
            experiment = self.table.by_name.get(record.experiment)
            if experiment is not None and record.variant in experiment.arms:
                self._judge(experiment, record)
            if record.pair_id:
                for variant, control, shadow in self.pairs.add(record):
                    self.metrics.pair(record.experiment, variant, control, shadow)
        if record.options.audit and self.audit is not None:
            try:
                self.audit.write(record)
            except OSError as exc:
                log.warning("cannot write the audit sample: %s", exc)
            else:
                self.metrics.audited(record)

    def _judge(self, experiment: Experiment, record: CallRecord) -> None:
        rollout = experiment.rollout
        if rollout is not None:
            # decision: prometheus judges the fleet's calls, read from Prometheus.
            if rollout.config.decision == "local" and record.outcome != CLIENT_CANCELLED:
                rollout.evidence.observe(record, time.monotonic())
            return
        stop_loss = experiment.stop_loss
        if stop_loss is None or record.outcome == CLIENT_CANCELLED:
            return
        trip = stop_loss.observe(record, experiment.live)
        if trip is None:
            return
        experiment.roll_back(trip)
        self.metrics.tripped(experiment, trip.reason)
        log.warning(
            "stop-loss rolled back %s of experiment %s (%s): %s",
            trip.variant,
            experiment.name,
            trip.reason,
            trip.detail,
            extra={
                "experiment": experiment.name,
                "variant": trip.variant,
                "reason": trip.reason,
                "weights": experiment.weights(),
            },
        )

    def feedback_reply(self, method: str, body: bytes) -> FeedbackReply:
        """`POST /_sidecar/feedback` on the proxy listener: count the feedback on its call."""
        return handle_feedback(method, body, self.feedback, self._feedback)

    def _feedback(self, call: CallArm, feedback: Feedback) -> None:
        self.metrics.feedback(call, feedback)
        experiment = self.table.by_name.get(call.experiment)
        if experiment is not None and experiment.rollout is not None:
            experiment.rollout.evidence.feedback(call.variant, feedback.outcome)

    # Admin ----------------------------------------------------------------------------

    def resume(self, name: str) -> ControlReply:
        """Send traffic to the experiment's candidates again (a rollout: from the step it was
        paused at, or from the start after a rollback)."""
        experiment = self.table.by_name.get(name)
        if experiment is None:
            return self._unknown(name)
        if experiment.rollout is not None:
            return self._act(experiment, RESUME)
        experiment.resume()
        self.metrics.resumed(experiment)
        log.info("experiment %s resumed", name, extra={"experiment": name})
        return ControlReply(200, {"resumed": name, "weights": experiment.weights()})

    def pause(self, name: str) -> ControlReply:
        """Hold a rollout at its current step until resumed."""
        return self._control(name, PAUSE)

    def promote(self, name: str) -> ControlReply:
        """Send every matching call to the rollout's candidate now."""
        return self._control(name, PROMOTE)

    def abort(self, name: str) -> ControlReply:
        """Roll the rollout back: every matching call to the control."""
        return self._control(name, ABORT)

    def _control(self, name: str, action: str) -> ControlReply:
        experiment = self.table.by_name.get(name)
        if experiment is None:
            return self._unknown(name)
        if experiment.rollout is None:
            message = f"experiment {name!r} has no rollout: only resume applies to it"
            return ControlReply(409, {"error": {"message": message}})
        return self._act(experiment, action)

    def _act(self, experiment: Experiment, action: str) -> ControlReply:
        rollout = experiment.rollout
        assert rollout is not None
        transition = self.rollouts.act(experiment, action)
        if transition is None:
            message = (
                f"{action} does not apply to rollout {experiment.name!r} in state "
                f"{rollout.state} (applies now: {', '.join(rollout.applicable()) or 'none'})"
            )
            return ControlReply(409, {"error": {"message": message}})
        body = {
            "experiment": experiment.name,
            "action": action,
            "from": transition.from_state,
            "to": transition.to_state,
            "weights": experiment.weights(),
        }
        return ControlReply(200, body)

    def _unknown(self, name: str) -> ControlReply:
        known = ", ".join(sorted(self.table.by_name)) or "none configured"
        return ControlReply(404, {"error": {"message": f"no experiment {name!r} (known: {known})"}})

    def status(self) -> dict[str, Any]:
        """The experiments' state, for /status."""
        return {name: experiment_status(e) for name, e in self.table.by_name.items()}

    def close(self) -> None:
        """Close the audit file."""
        if self.audit is not None:
            self.audit.close()

    async def aclose(self) -> None:
        """Close the rollouts' Prometheus sessions and the audit file."""
        await self.rollouts.close()
        self.close()


def experiment_status(experiment: Experiment) -> dict[str, Any]:
    """One experiment's state: mode, weights now, rolled-back arms and why, window sizes."""
    match = experiment.config.match
    windows = {}
    if experiment.stop_loss is not None:
        windows = {arm: len(experiment.stop_loss.window(arm)) for arm in experiment.arms}
    return {
        "mode": experiment.mode,
        "match": match.model_dump(exclude_none=True),
        "active": experiment.active,
        "arms": {
            arm.variant: {"model": arm.model, "upstream": arm.upstream}
            for arm in experiment.arms.values()
        },
        "weights": experiment.weights(),
        "rolled_back": sorted(experiment.rolled_back),
        "trips": [
            {"variant": t.variant, "reason": t.reason, "detail": t.detail, "at_unix": t.at_unix}
            for t in experiment.trips
        ],
        "stop_loss_window_calls": windows,
        **({"rollout": experiment.rollout.status()} if experiment.rollout is not None else {}),
    }
