"""Per-model results of a probe: the sidecar's own /metrics, plus what the probe itself saw."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sidecar.probe.runner import ModelRun, ProbeSettings
from sidecar.tools.report import GroupStats

SCHEMA = "model-sidecar/probe/v1"
OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"

# What a failure kind most likely means, for the per-model message.
HINTS = {
    "401": "the provider rejected the API key",
    "403": "the API key may not use this model",
    "404": "unknown model (or path) at this provider",
    "429": "rate limited",
    "502": "the sidecar could not reach the upstream",
    "504": "the upstream did not answer in time",
    "connection": "the probe could not reach the sidecar",
    "timeout": "no answer in time",
}


@dataclass
class ModelResult:
    """One model's row: durations in seconds, money in USD, ratios from 0 to 1."""

    model: str
    status: str  # ok, failed (sent, nothing succeeded) or skipped (not sent)
    rank: int | None = None  # by median latency of successful calls, 1 = fastest
    problem: str | None = None
    note: str | None = None
    planned: int = 0
    sent: int = 0  # measured calls the probe sent
    warmup_calls: int = 0  # sent before measuring: in the spend, not in these numbers
    calls: float = 0.0  # as the sidecar counted them: SDK retries are calls too
    errors: float = 0.0
    error_ratio: float | None = None
    errors_by_type: dict[str, float] = field(default_factory=dict)
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_p99_s: float | None = None
    latency_mean_s: float | None = None
    ttft_p95_s: float | None = None
    output_tokens_per_second: float | None = None
    cost_usd: float = 0.0
    cost_per_call_usd: float | None = None
    cost_per_10k_calls_usd: float | None = None
    retries: float = 0.0
    retry_ratio: float | None = None
    low_confidence_ratio: float | None = None
    repeat_same_ratio: float | None = None
    repeat_compared: float = 0.0


@dataclass
class ProbeReport:
    """The whole probe: settings, budget, and the models ranked fastest first."""

    models: list[ModelResult]
    settings: dict[str, Any]
    prompts: int
    metrics_url: str
    duration_s: float
    budget_usd: float | None = None
    spent_usd: float = 0.0  # everything the probe sent, warm-up included
    budget_reached: bool = False
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the `--format json` document)."""
        return asdict(self)

    @property
    def all_ok(self) -> bool:
        """True when every model answered at least once."""
        return all(model.status == OK for model in self.models)


def model_result(run: ModelRun, stats: GroupStats | None) -> ModelResult:
    """One model's result from its run and its /metrics statistics since the probe began."""
    result = ModelResult(
        run.probe.label, OK, planned=run.planned, sent=run.started, warmup_calls=run.warmed
    )
    if run.probe.problem is not None:
        result.status, result.problem = SKIPPED, run.probe.problem
        return result
    if run.succeeded == 0:
        result.status, result.problem = FAILED, _failure_problem(run)
    result.note = run.stopped
    if stats is None:
        if result.status == OK:
            result.note = "the sidecar recorded no calls (another model label, or `other`?)"
        return result
    ok = stats.ok_duration
    result.calls, result.errors = stats.calls, stats.errors
    result.error_ratio = stats.error_ratio
    result.errors_by_type = {kind: n for kind, n in sorted(stats.errors_by_type.items()) if n}
    result.latency_p50_s, result.latency_p95_s = ok.quantile(0.5), ok.quantile(0.95)
    result.latency_p99_s, result.latency_mean_s = ok.quantile(0.99), ok.mean
    result.ttft_p95_s = stats.ttfc.quantile(0.95)
    result.output_tokens_per_second = (
        stats.tokens.get("output", 0.0) / ok.total if ok.total else None
    )
    result.cost_usd = stats.cost_usd
    result.cost_per_call_usd, result.cost_per_10k_calls_usd = (
        stats.cost_per_call,
        stats.cost_per_10k,
    )
    result.retries, result.retry_ratio = stats.retries, stats.retry_ratio
    result.low_confidence_ratio = stats.low_confidence_ratio
    result.repeat_same_ratio = stats.repeatability
    result.repeat_compared = stats.repeats.get("same", 0.0) + stats.repeats.get("different", 0.0)
    if stats.cost_unknown and not stats.cost_usd:
        result.note = _join(result.note, "no price known for this model: cost not counted")
    return result


def rank(results: Sequence[ModelResult]) -> list[ModelResult]:
    """Answering models by median then mean latency (ranked 1…n), then the others as given."""
    answered = [r for r in results if r.status == OK and r.latency_p50_s is not None]
    answered.sort(key=lambda r: (r.latency_p50_s or 0.0, r.latency_mean_s or 0.0))
    for position, result in enumerate(answered, start=1):
        result.rank = position
    return answered + [r for r in results if r not in answered]


def build_report(
    runs: Sequence[ModelRun],
    summary: Mapping[tuple[str, ...], GroupStats],
    settings: ProbeSettings,
    *,
    prompts: int,
    metrics_url: str,
    duration_s: float,
    spent_usd: float,
    budget_reached: bool = False,
) -> ProbeReport:
    """The report of a finished probe."""
    results = [model_result(run, summary.get(run.probe.metrics_key)) for run in runs]
    return ProbeReport(
        models=rank(results),
        settings=asdict(settings),
        prompts=prompts,
        metrics_url=metrics_url,
        duration_s=duration_s,
        budget_usd=settings.budget_usd,
        spent_usd=spent_usd,
        budget_reached=budget_reached,
    )


def _failure_problem(run: ModelRun) -> str:
    kind, _ = run.failures.most_common(1)[0] if run.failures else ("", 0)
    hint = HINTS.get(kind)
    detail = run.first_failure or "no call completed"
    text = f"all {run.failed} calls failed"
    return f"{text}: {hint} ({detail})" if hint else f"{text} ({detail})"


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second
