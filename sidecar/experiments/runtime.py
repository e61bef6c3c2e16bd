"""The experiments of a running sidecar: assignment on the call path, then (off it) the
stop-loss, shadow pairs and the audit sample; reconfigured live on a config reload.

The proxy calls `prepare` for each call (O(1): one dict lookup when experiments exist) and
`launch` once the control call is on its way; the pipeline runs `observe` as an enrich
stage, before output kept for enrichment is forgotten.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict

from sidecar.config.models import SidecarConfig
from sidecar.experiments.assignment import Arm, Experiment, ExperimentTable
from sidecar.experiments.audit import AuditLog
from sidecar.experiments.feedback import CallArm, Feedback, FeedbackStore
from sidecar.experiments.metrics import ExperimentMetrics
from sidecar.experiments.rewrite import Rewritten, ask_for_model
from sidecar.experiments.shadow import ArmLimiter, PairBook, ShadowRequest, ShadowRunner
from sidecar.forward.routing import Route, Upstream
from sidecar.http1.client import UpstreamPool
from sidecar.pipeline import Pipeline
from sidecar.record import CLIENT_CANCELLED, CallRecord
from sidecar.telemetry.prometheus import PrometheusSink

log = logging.getLogger("sidecar.experiments")

# Headers never copied to a shadow call: the provider could answer it from the control's
# idempotent result, or the shadow's span would claim the control's place in the trace.
_NOT_SHADOWED = ("Idempotency-Key", "traceparent", "tracestate")


@dataclass(slots=True)
class ShadowCopy:
    """A shadow call prepared on the call path, started by `launch`."""

    arm: Arm
    limiter: ArmLimiter
    route: Route
    request: Rewritten


@dataclass(slots=True)
class Plan:
    """What an experiment changes about one call: where it goes, what it asks, its shadows."""

    experiment: Experiment
    route: Route
    query: str
    body: bytes
    shadows: list[ShadowCopy] = field(default_factory=list)


class Experiments:
    """Assignment, shadows, stop-loss, feedback and audit for one sidecar."""

    def __init__(
        self,
        config: SidecarConfig,
        prometheus: PrometheusSink,
        pipeline: Pipeline,
        upstreams: Mapping[str, Upstream],
        pools: Callable[[], Mapping[str, UpstreamPool]],
    ) -> None:
        self.metrics = ExperimentMetrics(prometheus)
        self.table = ExperimentTable(())
        self.feedback: FeedbackStore | None = None
        self.audit: AuditLog | None = None
        self.shadows = ShadowRunner(
            pipeline,
            pools,
            inject_usage=config.telemetry.inject_stream_usage,
            propagate_traceparent=config.telemetry.propagate_traceparent,
        )
        self.pairs = PairBook(1000)
        self._upstreams: Mapping[str, Upstream] = upstreams
        self._limiters: dict[tuple[str, str], ArmLimiter] = {}
        self._rng = random.Random()
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
            experiment = Experiment(item)
            experiments.append(experiment)
            self.metrics.configured(experiment)
            self._limiters = {k: v for k, v in self._limiters.items() if k[0] != item.name}
        names = {item.name for item in config.experiments}
        for name in previous:
            if name not in names:
                self.metrics.removed(name)
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

    def prepare(
        self,
        record: CallRecord,
        route: Route,
        query: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> Plan | None:
        """Assign the call to an arm, remember it for feedback, sample it for the audit."""
        plan = None
        if self.table.by_name:
            experiment = self.table.match(
                record.request.request_model, route.path, route.upstream.name
            )
            if experiment is not None:
                plan = self._assign(experiment, record, route, query, body, headers)
        if self.feedback is not None:
            call = CallArm(
                record.provider_name,
                record.request.request_model or "",
                record.experiment,
                record.variant,
            )
            self.feedback.remember(record.request_id, call)
        if self.audit is not None and self.audit.sample():
            record.audit = True
            record.output_for_enrichment = True
        return plan

    def _assign(
        self,
        experiment: Experiment,
        record: CallRecord,
        route: Route,
        query: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> Plan | None:
        position = experiment.position(headers, self._rng)
        record.experiment = experiment.name
        if experiment.shadow:
            record.variant = "control"
            return self._shadow_plan(experiment, position, record, route, query, body)
        arm = experiment.choose(position)
        target = self._target(route, arm)
        rewritten = None
        if target is not None and not arm.is_control:
            rewritten = ask_for_model(
                route.protocol, record.method, route.path, query, body, record.request, arm.model
            )
        if target is None or rewritten is None:
            record.variant = "control"
            return None
        record.variant = arm.variant
        record.request = rewritten.info
        upstream = target.upstream
        record.upstream = upstream.name
        record.server_address, record.server_port = upstream.host, upstream.port
        target_route = Route(upstream, route.protocol, rewritten.path)
        return Plan(experiment, target_route, query, rewritten.body)

    def _target(self, route: Route, arm: Arm) -> Route | None:
        """Where an arm's calls go: the routed upstream or the arm's own (same protocol)."""
        if arm.upstream is None or arm.upstream == route.upstream.name:
            return route
        upstream = self._upstreams.get(arm.upstream)
        if upstream is None or upstream.protocol is not route.protocol:
            return None
        return Route(upstream, route.protocol, route.path)

    def _shadow_plan(
        self,
        experiment: Experiment,
        position: float,
        record: CallRecord,
        route: Route,
        query: str,
        body: bytes,
    ) -> Plan:
        plan = Plan(experiment, route, query, body)
        for arm in experiment.shadows(position):
            target = self._target(route, arm)
            if target is None:
                continue
            rewritten = ask_for_model(
                route.protocol, record.method, route.path, query, body, record.request, arm.model
            )
            if rewritten is None:
                continue
            limiter = self._limiter(experiment, arm)
            refused = limiter.acquire()
            if refused is not None:
                self.metrics.shadow_skipped(experiment.name, arm.variant, refused)
                continue
            plan.shadows.append(ShadowCopy(arm, limiter, target, rewritten))
        if plan.shadows:
            record.pair_id = record.request_id
            record.output_for_enrichment = True
        return plan

    def _limiter(self, experiment: Experiment, arm: Arm) -> ArmLimiter:
        key = (experiment.name, arm.variant)
        limiter = self._limiters.get(key)
        if limiter is None:
            limits = experiment.config.shadow
            limiter = self._limiters[key] = ArmLimiter(
                limits.max_concurrency, limits.max_per_second
            )
        return limiter

    def launch(self, plan: Plan, record: CallRecord, headers: CIMultiDict[str]) -> None:
        """Start the plan's shadow calls in the background (the control call is under way)."""
        for copy in plan.shadows:
            shadow_headers = headers.copy()
            for name in _NOT_SHADOWED:
                shadow_headers.popall(name, None)
            request = ShadowRequest(
                record.method,
                Route(copy.route.upstream, copy.route.protocol, copy.request.path),
                plan.query,
                shadow_headers,
                copy.request.body,
                copy.request.info,
            )
            self.shadows.start(plan.experiment, copy.arm, copy.limiter, record, request)

    # Off the call path ----------------------------------------------------------------

    def observe(self, record: CallRecord) -> None:
        """Pipeline stage: stop-loss windows, shadow pairs, the audit sample."""
        if record.experiment:
            experiment = self.table.by_name.get(record.experiment)
            if experiment is not None and record.variant in experiment.arms:
                self._judge(experiment, record)
            if record.pair_id:
                for variant, control, shadow in self.pairs.add(record):
                    self.metrics.pair(record.experiment, variant, control, shadow)
        if record.audit and self.audit is not None:
            try:
                self.audit.write(record)
            except OSError as exc:
                log.warning("cannot write the audit sample: %s", exc)
            else:
                self.metrics.audited(record)

    def _judge(self, experiment: Experiment, record: CallRecord) -> None:
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

    def record_feedback(self, call: CallArm, feedback: Feedback) -> None:
        """Count one feedback message (the endpoint found its call)."""
        self.metrics.feedback(call, feedback)

    # Admin ----------------------------------------------------------------------------

    def resume(self, name: str) -> Experiment | None:
        """Send traffic to the experiment's candidates again; None when there is no such one."""
        experiment = self.table.by_name.get(name)
        if experiment is None:
            return None
        experiment.resume()
        self.metrics.resumed(experiment)
        log.info("experiment %s resumed", name, extra={"experiment": name})
        return experiment

    def status(self) -> dict[str, Any]:
        """The experiments' state, for /status."""
        return {name: experiment_status(e) for name, e in self.table.by_name.items()}

    async def close(self) -> None:
        """Stop the shadow calls still running and close the audit file."""
        await self.shadows.close()
        if self.audit is not None:
            self.audit.close()


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
    }
