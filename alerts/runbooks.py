"""Runbook text for every alert: what it means, the first three things to check, how to stop
the loss. Rendered into alerts/runbooks.md; each alert's runbook_url points at its section."""

from __future__ import annotations

from alerts import series as s
from alerts.model import Runbook
from alerts.quota import RUNBOOK as QUOTA_RUNBOOK

P95_QUERY = (
    "`histogram_quantile(0.95, sum by (le, gen_ai_request_model, upstream) ("
    + s.each(s.DURATION, "_bucket", "rate({name}[5m])")
    + "))`"
)
# `rate(tokens of a type[5m]) / rate(calls[5m])`.
_TOKENS_PER_CALL = "`rate(" + s.TOKENS + '{{gen_ai_token_type="{}"}}[5m]) / rate(' + s.REQUESTS

RUNBOOKS: tuple[Runbook, ...] = (
    Runbook(
        alert="ModelTailLatencyHigh",
        meaning=(
            'The slowest 5% (label `quantile="0.95"`) or 1% (`quantile="0.99"`) of calls to '
            "this model take longer than the threshold, as the app saw them (from the request's "
            "arrival at the sidecar to the last byte forwarded). Users wait; request timeouts "
            "upstream of the app may start to cut calls off."
        ),
        checks=(
            "Provider or upstream? Split the quantile by `upstream` and `gen_ai_operation_name`: "
            f"{P95_QUERY}. One upstream slow means that endpoint or region; all of them means "
            "the provider or the model itself. Check the provider's status page.",
            "Longer answers, or slower tokens? Compare "
            + _TOKENS_PER_CALL.format("output")
            + "[5m])` with last week, and the p95 of the time per output chunk ("
            + s.shown(s.TIME_PER_CHUNK)
            + "): more output tokens per call (a prompt change, reasoning effort) is the "
            "app's doing; slower chunks are the provider's.",
            f"Not the sidecar: the p95 of `{s.OVERHEAD}` should stay in the "
            f"milliseconds, and `{s.IN_FLIGHT}` should not pile up.",
        ),
        stop_loss=(
            "Move latency-sensitive traffic to a faster model or another region/upstream "
            "(a config change of the app's model name, or of the sidecar's upstream URL); cap "
            "`max_tokens`; for streaming apps, check whether time to first token is fine and "
            "only the total is slow. If a rollout made it worse, roll it back."
        ),
    ),
    Runbook(
        alert="ModelTimeToFirstTokenHigh",
        meaning=(
            "The p95 time until the first chunk of a streamed answer exceeds the threshold: "
            "users of a chat UI stare at an empty answer. Covers streaming calls only."
        ),
        checks=(
            "Queueing at the provider? Compare with the non-streaming duration p95 "
            f"(ModelTailLatencyHigh) and look for 429s in `{s.REQUESTS}"
            '{http_status_code="429"}`: rate limits and overload show up here first.',
            "Bigger prompts? "
            + _TOKENS_PER_CALL.format("input")
            + "[5m])`: longer inputs take longer to prefill; a "
            "falling `cache_read` share means prompt caching stopped working.",
            "Reasoning models think before the first visible token: check whether "
            '`gen_ai_token_type="reasoning"` tokens per call went up (reasoning effort changed).',
        ),
        stop_loss=(
            "Route interactive traffic to a model with a faster first token, restore prompt "
            "caching (stable prompt prefix), lower the reasoning effort, or trim the prompt."
        ),
    ),
    Runbook(
        alert="ModelErrorBudgetBurn",
        meaning=(
            "Calls to this model fail on the provider's side (5xx, 429, timeouts, connection "
            "errors, interrupted streams; not the app's own 4xx) fast enough to spend the "
            'error budget of the availability SLO early. `burn="fast"` (severity critical, '
            "page): 14.4x the budget rate over 1 h and 5 m, i.e. 2% of a 30-day budget in an "
            'hour. `burn="slow"` (severity warning, ticket): 6x over 6 h and 30 m.'
        ),
        checks=(
            f"Which errors? `sum by (outcome, http_status_code) (rate({s.REQUESTS}"
            '{gen_ai_request_model="MODEL", outcome!="ok"}[5m]))`: 429 = rate limits or '
            "quota, 5xx = provider outage, timeout/connection_error = network or a stuck "
            "upstream, stream_interrupted = streams cut mid-answer.",
            "One upstream or all? Split by `upstream`; check the provider's status page and "
            "the sidecar's access log (`log.access_log: true`) for the failing calls.",
            "Did anything change on our side: a deploy of the app (new model name, bigger "
            "requests), an API key rotation, a quota change?",
        ),
        stop_loss=(
            "Fail over to another upstream or region, or to a fallback model; for 429s, lower "
            "the app's concurrency or raise the quota; enable the sidecar's retries only for "
            "idempotent calls and watch ModelRetryStorm. Roll back the change that started it."
        ),
    ),
    Runbook(
        alert="ModelSpendBurnHigh",
        meaning=(
            "The model cost more than the hourly budget over the last hour (estimated from "
            "the provider's reported tokens and genai-prices prices)."
        ),
        checks=(
            f"More calls, or more tokens per call? Compare `model:{s.base(s.REQUESTS)}:rate5m`"
            " and tokens per call by `gen_ai_token_type` with yesterday.",
            f"Which app? Split `rate({s.COST}[1h])` by `namespace`, `job` or"
            " `pod`: a loop, a batch job or a retry storm in one service is the usual cause.",
            "Cache misses: a falling `cache_read` share multiplies input cost; reasoning tokens "
            "are billed as output.",
        ),
        stop_loss=(
            "Stop or throttle the runaway caller (scale the batch job down, fix the loop); "
            "cap `max_tokens`; move bulk traffic to a cheaper model. Raise the threshold "
            "(`spend_per_hour_usd`) only if the new spend is intended."
        ),
    ),
    Runbook(
        alert="ModelDailyBudgetAtRisk",
        meaning=(
            "At the trend of the last 6 hours (linear regression of the spend rate), the "
            "model will cost more than the daily budget over the next 24 hours."
        ),
        checks=(
            f"Is the trend real? Graph `model:{s.base(s.COST)}:rate5m * 86400` over the "
            "last day: a morning ramp-up extrapolates high; a steady climb is real.",
            f"Which callers grow? Split `rate({s.COST}[1h])` by `namespace`/"
            "`job`, and tokens per call by type.",
            "Prices: a changed response model (a new snapshot) can carry a different price; "
            "check `gen_ai_response_model`.",
        ),
        stop_loss=(
            "Throttle or reschedule non-urgent bulk work, move it to a cheaper model or a batch "
            "API, cap `max_tokens`. Raise `daily_budget_usd` if the growth is planned."
        ),
    ),
    Runbook(
        alert="ModelRetryStorm",
        meaning=(
            "Retries (the app's SDK retrying, `source=\"client\"`, plus the sidecar's own, "
            '`source="sidecar"`) exceed the threshold per call. Retries multiply load on a '
            "struggling provider and cost, and stretch the latency users see."
        ),
        checks=(
            f"Why retried? `sum by (source, reason) (rate({s.RETRIES}[5m]))`: "
            "429 = rate limited, 5xx = provider errors, connection_error = network.",
            "Is the error budget burning as well (ModelErrorBudgetBurn)? Then the retries are "
            "a symptom: handle that first.",
            "Which clients retry: split by `namespace`/`job`; SDK defaults (2 retries with "
            "backoff) are fine, custom tight loops are not.",
        ),
        stop_loss=(
            "Lower the SDKs' `max_retries` or add backoff that honours `retry-after`; turn the "
            "sidecar's own retries off; shed load (lower concurrency) until the provider recovers."
        ),
    ),
    Runbook(
        alert="ModelLowConfidenceHigh",
        meaning=(
            "A larger share than the threshold of the model's answers (those with "
            "log-probabilities) were low-confidence: more answers need human review, more "
            "wrong answers reach users."
        ),
        checks=(
            "Did the model change? Check `gen_ai_response_model` for a new snapshot, and "
            "whether a candidate model is in an experiment.",
            "Did the inputs change? A new prompt template, a new kind of request, a language "
            "the model handles worse: compare by `namespace`/`job` and input tokens per call.",
            "Look at the distribution: `histogram_quantile(0.5, sum by (le) (rate(model_"
            'sidecar_confidence_bucket{gen_ai_request_model="MODEL"}[30m])))` against last week.',
        ),
        stop_loss=(
            "Roll back the prompt or model change; route the affected requests to a stronger "
            "model; send low-confidence answers to review instead of to users."
        ),
    ),
    Runbook(
        alert="ModelOutputNotRepeatable",
        meaning=(
            "Temperature-0 requests repeated by the sidecar's repeatability check got a "
            "different answer more often than the threshold: the model (or the provider's "
            "serving stack) is not deterministic, so caches, tests and audits relying on "
            "repeatable answers break."
        ),
        checks=(
            "A new snapshot? Check `gen_ai_response_model`: providers change serving under the "
            "same model name.",
            "Which requests differ: long outputs and tool calls diverge more; compare output "
            "tokens per call.",
            "Is it the whole provider (several models) or one model?",
        ),
        stop_loss=(
            "Pin a dated model snapshot, use the provider's `seed` where offered, and do not "
            "rely on exact repeats: compare answers semantically, cache by request."
        ),
    ),
    Runbook(
        alert="CandidateModelWorse",
        meaning=(
            'In an experiment, a candidate arm (`variant=~"candidate.*"`) does worse than the '
            'control arm of the same experiment, beyond the limit, on `comparison="latency"` '
            '(p95 ratio), `"errors"` (error ratio difference) or `"cost"` (cost per call '
            "ratio). Needs the experiments feature (labels `experiment`, `variant`)."
        ),
        checks=(
            "Compare the arms side by side on the experiments dashboard: p50/p95, time to first "
            "token, errors, cost per call, confidence.",
            "Enough traffic on both arms? Both must carry the minimum call rate for this "
            "alert; a tiny candidate share makes p95 noisy.",
            "Did the sidecar's stop-loss act (ModelSidecarStopLossTripped)? If not, check its "
            "configured limits against these alert thresholds.",
        ),
        stop_loss=(
            "Set the candidate's traffic share to 0 in the experiment config (or let the "
            "stop-loss do it), then look at why: a different prompt format, a slower region, "
            "a more expensive model."
        ),
    ),
    Runbook(
        alert="ModelSidecarStopLossTripped",
        meaning=(
            "The sidecar's stop-loss sent a candidate arm's traffic back to the control because "
            "the candidate crossed its configured limits. The loss is stopped; a human should "
            "decide what happens to the experiment. Needs the experiments feature (metric "
            f"`{s.STOPLOSS_TRIPS}{{experiment, reason}}`; reason `latency`, "
            "`errors`, `cost` or `low_confidence`)."
        ),
        checks=(
            "Which candidate and limit tripped, with the numbers: the sidecar's `/status` "
            "(`experiments.<name>.trips`) and its log line `stop-loss rolled back …`.",
            "Is the control healthy (not a provider-wide incident that hit the candidate first)?",
            "Does the trip repeat on every pod? Assignment is per pod; one pod alone may be noise.",
        ),
        stop_loss=(
            "Already stopped by the sidecar: the candidate stays at weight 0 until the config "
            "changes or `POST /experiments/<name>/resume` on the admin port. End or fix the "
            "experiment before resuming it."
        ),
    ),
    Runbook(
        alert="ModelSidecarDown",
        meaning=(
            "Prometheus cannot scrape a sidecar (`up == 0`, severity critical), or finds no "
            'sidecar target at all (`reason="absent"`, severity warning). A down sidecar '
            "means the app beside it cannot reach its model (its SDK points at the sidecar) "
            "and nothing is measured."
        ),
        checks=(
            "Is the pod running and the sidecar container ready? `kubectl get pod` / "
            "`kubectl logs -c model-sidecar`, its `/healthz` and `/readyz` on the admin port.",
            "Is the scrape config right? The target's `job` must match `sidecar_job_regex`; "
            "the admin port must be reachable from Prometheus (NetworkPolicy, port name).",
            "Crash loops: out of memory (`limits.max_request_body_bytes`, queue sizes) or a "
            "config error (`model-sidecar check-config`).",
        ),
        stop_loss=(
            "Restart or roll back the sidecar's image/config; as a last resort point the app "
            "straight at the provider (unset its base URL) and accept the lost telemetry."
        ),
    ),
    Runbook(
        alert="ModelSidecarTelemetryDropping",
        meaning=(
            'A sidecar drops telemetry because a queue is full (`sink="pipeline"`: finished '
            "calls no sink saw; other sinks: their own items, e.g. spans). Calls are not "
            "affected, but metrics, spans and every alert built on them undercount."
        ),
        checks=(
            f"Which sink: `sum by (sink) (rate({s.TELEMETRY_DROPPED}[5m]))`.",
            "Is the span exporter's endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) reachable and fast?",
            "Is the sidecar CPU-starved (CPU throttling of the container) at this call rate?",
        ),
        stop_loss=(
            "Fix or scale the collector; raise `telemetry.queue_size`; give the sidecar more "
            "CPU; sample spans (`OTEL_TRACES_SAMPLER`)."
        ),
    ),
    QUOTA_RUNBOOK,
    Runbook(
        alert="RolloutRolledBack",
        meaning=(
            "A staged rollout (experiment `rollout:`) sent its candidate back to 0 %: one of its "
            "gates (errors, latency, ttft, cost, low_confidence, feedback) failed with enough "
            "evidence, or an admin called abort. With `decision: prometheus` every sidecar of "
            "the fleet follows the rollback. The loss is stopped; a human decides what next."
        ),
        checks=(
            "Which gate, with its numbers: `/status` on the admin port "
            "(`experiments.<name>.rollout.transitions`, the last one's `detail`) and the log "
            "line `rollout <name>: step_… -> rolled_back (<gate>)`.",
            "Is the control healthy (a provider-wide incident can hit the candidate first)? "
            f"`sum by (variant, to_state, reason) ({s.ROLLOUT_TRANSITIONS})` shows who moved.",
            "Did every pod roll back? "
            f'`{s.ROLLOUT_STATE}{{state="rolled_back"}} == 1` per instance.',
        ),
        stop_loss=(
            "Already stopped. Fix the candidate (or its config), then "
            "`POST /experiments/<name>/resume` on every pod's admin port to start again at the "
            "first step."
        ),
    ),
    Runbook(
        alert="RolloutStuck",
        meaning=(
            "A staged rollout has held the same step for several times its `min_duration`: "
            "a gate keeps waiting for evidence (too few calls at a small step, an error ratio "
            "interval that straddles its limit), or the fleet verdict cannot be read "
            f"(`{s.ROLLOUT_DECISION_ERRORS}` rising). With `on_complete: hold` the last step "
            "waits for an admin on purpose."
        ),
        checks=(
            "Why it holds: `/status` → `experiments.<name>.rollout.why` and each gate's "
            "`verdict`, `value`, `limit` and `why`.",
            f"Prometheus reachable from the sidecars? `increase({s.ROLLOUT_DECISION_ERRORS}[15m])`"
            " and `decision_error` in `/status`.",
            "Enough traffic? `min_calls` is per arm and per step: at a 1 % step the fleet "
            "needs 100x that many matching calls.",
        ),
        stop_loss=(
            "Nothing is lost while it holds. Lower `min_calls`, widen a limit that is too "
            "strict, fix Prometheus, or decide by hand: `POST /experiments/<name>/promote` or "
            "`/abort`."
        ),
    ),
    Runbook(
        alert="ModelChangedSilently",
        meaning=(
            "The provider changed the response model or the `system_fingerprint` it returns "
            "for a requested model (an alias such as `gpt-4o` now served by another snapshot, "
            "or another backend). Quality, repeatability, latency and cost may change with it "
            "though nobody changed a config."
        ),
        checks=(
            f"What serves it now, and before: `{s.MODEL_INFO}` and the sidecar's log line "
            "`the provider changed what serves <model>: old -> new`.",
            "Did repeatability, confidence, feedback or latency move at the same time? The "
            "dashboards carry the change as an annotation.",
            "Is it one pod or all of them (a canary of the provider reaches some first)?",
        ),
        stop_loss=(
            "Pin a dated snapshot instead of the alias in the app (or with a split "
            "experiment), and compare the new snapshot with a staged rollout before moving."
        ),
    ),
)
