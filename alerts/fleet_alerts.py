"""Experiment alerts (candidate worse than control, stop-loss tripped) and the health of the
sidecars themselves (scrape target down, telemetry dropped)."""

from __future__ import annotations

from collections.abc import Mapping

from alerts import recording as rec
from alerts import series as s
from alerts.model import AlertRule

ARM = "{{ $labels.variant }} of experiment {{ $labels.experiment }}"
CANDIDATE = 'variant=~"candidate.*"'
CONTROL = 'variant="control"'
INSTANCE = "{{ $labels.instance }} (job {{ $labels.job }})"


def _candidate_vs_control(series: str, operator: str) -> str:
    """Each candidate arm's `series` combined with its experiment's control arm."""
    return (
        f"  {series}{{{CANDIDATE}}}\n{operator} on (experiment) group_left ()\n"
        f"  {series}{{{CONTROL}}}"
    )


def experiment_alerts(t: Mapping[str, str], timing: rec.Timing) -> tuple[AlertRule, ...]:
    """CandidateModelWorse (latency, errors, cost) and ModelSidecarStopLossTripped."""
    w = timing.window
    requests = rec.arm(rec.ARM_REQUESTS, w)
    # Both arms carry at least the minimum call rate.
    guard = (
        f"and\n  {requests}{{{CANDIDATE}}} >= {t['min_request_rate']}\n"
        f"and on (experiment)\n  {requests}{{{CONTROL}}} >= {t['min_request_rate']}"
    )
    p95 = rec.arm(rec.ARM_DURATION_P95, w)
    errors = rec.arm(rec.ARM_ERROR_RATIO, w)
    cost = rec.arm(rec.ARM_COST_PER_CALL, w)

    def ratio(series: str) -> str:
        return (
            f"  {series}{{{CANDIDATE}}}\n/ on (experiment) group_left ()\n"
            f"  ({series}{{{CONTROL}}} > 0)"
        )

    comparisons = (
        (
            "latency",
            ratio(p95),
            t["candidate_latency_ratio"],
            "p95 call duration is {{ $value | humanize }}x the control's",
        ),
        (
            "errors",
            _candidate_vs_control(errors, "-"),
            t["candidate_error_ratio_increase"],
            "error ratio is {{ $value | humanizePercentage }} above the control's",
        ),
        (
            "cost",
            ratio(cost),
            t["candidate_cost_ratio"],
            "cost per call is {{ $value | humanize }}x the control's",
        ),
    )
    rules = [
        AlertRule(
            alert="CandidateModelWorse",
            expr=f"(\n{comparison}\n) > {limit}\n{guard}",
            for_=timing.for_("10m"),
            severity="warning",
            labels={"comparison": name},
            summary=f"Candidate {ARM} is worse than control ({name})",
            description=(
                f"Over {w}, candidate {ARM}: {what} (limit {limit}). The stop-loss should "
                f"send its traffic back to the control."
            ),
        )
        for name, comparison, limit, what in comparisons
    ]
    rules.append(
        AlertRule(
            alert="ModelSidecarStopLossTripped",
            expr=f"sum by (experiment, reason) (increase({s.STOPLOSS_TRIPS}[15m])) > 0",
            for_=timing.for_("0s"),
            severity="warning",
            summary=(
                "Stop-loss rolled back a candidate of experiment {{ $labels.experiment }} "
                "({{ $labels.reason }})"
            ),
            description=(
                "The sidecar's stop-loss sent a candidate's traffic of experiment "
                "{{ $labels.experiment }} back to the control: its {{ $labels.reason }} crossed "
                "the configured limit (trips in the last 15 minutes: {{ $value | humanize }}). "
                "The sidecar's /status and log name the candidate and the numbers."
            ),
        )
    )
    return tuple(rules)


def sidecar_alerts(t: Mapping[str, str], timing: rec.Timing) -> tuple[AlertRule, ...]:
    """ModelSidecarDown (target down or no target at all), ModelSidecarTelemetryDropping."""
    job = f"job=~{t['sidecar_job_regex']}"
    return (
        AlertRule(
            alert="ModelSidecarDown",
            expr=f"up{{{job}}} == 0",
            for_=timing.for_("5m"),
            severity="critical",
            summary=f"model-sidecar {INSTANCE} is down",
            description=(
                f"Prometheus could not scrape the sidecar at {INSTANCE} for "
                f"{timing.for_('5m')}: the calls of the app beside it may be failing, and they "
                f"are not measured."
            ),
        ),
        AlertRule(
            alert="ModelSidecarDown",
            expr=f"absent(up{{{job}}})",
            for_=timing.for_("15m"),
            severity="warning",
            labels={"reason": "absent"},
            summary="No model-sidecar scrape target",
            description=(
                "Prometheus has no scrape target whose job matches the configured "
                "sidecar_job_regex: no model call is measured and no other model alert can fire."
            ),
        ),
        AlertRule(
            alert="ModelSidecarTelemetryDropping",
            expr=(
                f"sum by (job, instance, sink) (rate({s.TELEMETRY_DROPPED}[5m]))"
                f" > {t['telemetry_drop_rate']}"
            ),
            for_=timing.for_("10m"),
            severity="warning",
            summary=f"model-sidecar {INSTANCE} drops telemetry",
            description=(
                f'The sidecar at {INSTANCE} drops {{{{ printf "%.3g" $value }}}} telemetry items '
                f"per second in sink {{{{ $labels.sink }}}}: metrics, spans or records are "
                f"missing."
            ),
        ),
    )
