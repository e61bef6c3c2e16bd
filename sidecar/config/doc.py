"""Generates docs/configuration.md from the config models; `--check` fails when it is out of date.

python -m sidecar.config.doc          # rewrite docs/configuration.md
python -m sidecar.config.doc --check  # exit 1 if docs/configuration.md differs
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic.fields import FieldInfo

from sidecar.config.keys import KeyDoc, field_type, format_value, iter_key_docs, nested_models
from sidecar.config.load import ENV_PREFIX
from sidecar.config.models import BUILTIN_UPSTREAMS, SidecarConfig
from sidecar.config.otel import (
    CAPTURE_CONTENT_VALUES,
    DEFAULT_EXPORT_TIMEOUT_MS,
    DEFAULT_SERVICE_NAME,
)
from sidecar.config.reload import RELOAD_INTERVAL_SECONDS, RESTART_SECTIONS
from sidecar.tools.docgen import run_doc_command

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
EXAMPLE_HEADING = "## Complete example"

# What a reload does not apply, beyond whole sections (Sidecar.reload in sidecar/app.py,
# LiveRouting.swap in sidecar/forward/live.py).
RELOAD_CAVEATS = {
    "limits": "New `connect_timeout_seconds`, `read_timeout_seconds` or "
    "`max_connections_per_upstream` values open new connection pools; calls under way finish "
    "on the old ones. A new `client_read_timeout_seconds` applies at once to request bodies "
    "and to connections that go idle from then on.",
    "retries": "The sidecar's retry policy is replaced at once; a new "
    "`idempotency_window_seconds` or `idempotency_max_keys` applies at once too (the key "
    "hashes already seen are kept).",
    "upstreams": "A changed URL gets a new connection pool; the old one closes once idle.",
    "experiments": "An experiment whose config did not change keeps its state (a rolled-back "
    "candidate stays rolled back); a changed or new one starts afresh.",
    "admin_token_file": "The file is read again on every reload, and whenever it changes "
    "(checked when a control endpoint is called), so a rotated Secret takes effect by itself; "
    "a file that cannot be read keeps the last good token and logs why. At start-up, a "
    "missing, unreadable or empty file stops the sidecar with one line saying why.",
}

EXAMPLE_YAML = """\
listen: 127.0.0.1:8788
admin_listen: 127.0.0.1:9788
admin_token_file: /etc/model-sidecar/admin-token   # a mounted Secret; unset: loopback only
default_upstream: openai
upstreams:
  openai: {url: https://api.openai.com}
  anthropic: {url: https://api.anthropic.com}
  gemini: {url: https://generativelanguage.googleapis.com}
  vllm:                                 # a self-hosted OpenAI-compatible server
    url: http://vllm:8000
    protocol: openai
    path_prefix: /vllm                  # apps call http://127.0.0.1:8788/vllm/v1/...
  bedrock:                              # Amazon Bedrock, signed with the pod's AWS identity
    url: https://bedrock-runtime.us-east-1.amazonaws.com
    region: us-east-1                   # default: the region in the URL's host
  azure:                                # Azure OpenAI: apps call /openai/...
    url: https://NAME.openai.azure.com
    deployments: {prod-gpt4o: gpt-4o}   # labels and prices answers that name no model
  groq:                                 # an OpenAI-compatible vendor
    url: https://api.groq.com/openai
    protocol: openai
    path_prefix: /groq                  # apps call http://127.0.0.1:8788/groq/v1/...
    provider: groq                      # its gen_ai.provider.name
limits:
  max_request_body_bytes: 33554432
  connect_timeout_seconds: 10
  read_timeout_seconds: 600
  client_read_timeout_seconds: 60
  max_connections_per_upstream: 0
  shutdown_grace_seconds: 30
telemetry:
  max_model_labels: 100
  inject_stream_usage: true
  propagate_traceparent: true
  capture_content_max_chars: 16384
  queue_size: 10000
  semconv_stability_opt_in: ""
log:
  level: info
  access_log: false
cost:
  enabled: true
  response_header: true
  overrides:                            # USD per million tokens
    llama-3.3-70b: {input: 0.6, output: 0.8, cache_read: 0.1, cache_write: 0.6}
confidence:
  enabled: true
  source: logprobs
  json_field: confidence
  header: x-confidence
  threshold: 0.5
  request_logprobs: false
  response_headers: true
retries:
  enabled: false
  max_attempts: 3
  statuses: [429, 502, 503, 504]
  retry_connect_errors: true
  backoff_initial_seconds: 0.25
  backoff_max_seconds: 4
  max_retry_after_seconds: 30
  budget_ratio: 0.1
  budget_window_seconds: 60
  budget_min_retries: 3
  idempotency_window_seconds: 600
  idempotency_max_keys: 10000
repeatability:
  enabled: true
  max_fingerprints: 10000
experiments:
  - name: chat-llama                    # split: 10 % of gpt-4o calls go to vLLM
    mode: split
    match:
      model: gpt-4o
      path: /v1/chat/completions
      upstream: openai
    key_header: x-user-id               # sticky per user (hashed, never stored)
    control: {weight: 90}
    candidates:
      - model: llama-3.3-70b
        upstream: vllm
        weight: 10
        variant: candidate-llama
    stop_loss:
      window_calls: 200
      window_seconds: 900
      min_calls: 30
      max_p95_ratio: 1.5
      min_p95_increase_seconds: 0.25
      max_error_ratio_increase: 0.05
      max_cost_ratio: 2
      max_low_confidence_increase: 0.1
  - name: haiku-shadow                  # shadow: copy 25 % of claude-sonnet-4 calls
    mode: shadow
    match: {model: claude-sonnet-4}
    candidates:
      - {model: claude-3-5-haiku-latest, weight: 25}
    shadow: {max_concurrency: 8, max_per_second: 10, max_pending_pairs: 1000}
  - name: mini-rollout                  # staged: 1 → 5 → 25 → 50 → 100 % while the gates hold
    match: {model: gpt-4o-mini}
    candidates:
      - {model: gpt-4.1-mini}
    stop_loss:                          # the gates' limits
      max_error_ratio_increase: 0.01
      max_p95_ratio: 1.3
      max_ttft_p95_ratio: 1.5
      max_negative_feedback_increase: 0.05
    rollout:
      steps: [1, 5, 25, 50, 100]
      min_calls: 200
      min_duration: 10m
      on_complete: promote
      decision: prometheus              # every pod reads the same fleet verdict
      evaluation_interval: 15s
      prometheus: {url: "http://prometheus.monitoring:9090", timeout: 5s, lookback: 10m}
feedback:
  enabled: true
  max_request_ids: 10000
audit:
  sample_rate: 0.01                     # 1 % of calls, written with secrets redacted
  path: /var/log/model-sidecar/audit.jsonl
  max_bytes: 10485760
  backups: 3
  redact: ['sk-[A-Za-z0-9_-]+']
  max_chars: 16384
ui:                                     # the comparison page at the admin listener's /
  enabled: true
  snapshot_interval_seconds: 5
slos:                                   # rules and alerts: `model-sidecar slo-rules`
  - name: chat-ttft                     # 99 % of streamed gpt-4o calls start within 1.28 s
    kind: latency
    measure: ttft
    threshold_seconds: 1.28             # a bucket boundary (docs/slos.md)
    objective: 0.99
    window: 28d
    model: gpt-4o
    upstream: openai
  - name: calls-succeed                 # 99.9 % of all calls succeed
    kind: success
    objective: 0.999
attribution:                            # cost, tokens and calls by team
  header: x-team
  values: [search, ads, support]        # anything else: `other`; no header: `none`
  max_values: 50                        # the bound without `values`
  strip: true                           # the provider never sees the header
budgets:                                # USD; CostBudgetAtRisk from `model-sidecar slo-rules`
  search: {usd_per_day: 200}
  ads: {usd_per_month: 3000}
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _key_table(rows: Sequence[KeyDoc]) -> list[str]:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [
        f"| `{row.path}` | {_cell(row.type)} | {_cell(row.default)} | {_cell(row.description)} |"
        for row in rows
    ]
    return lines


def _reload_line(name: str) -> str:
    if name in RESTART_SECTIONS:
        return "Reload: needs a restart (a reload that changes it logs a warning and keeps it)."
    caveat = RELOAD_CAVEATS.get(name)
    return "Reload: live." + (f" {caveat}" if caveat else "")


def _section(name: str, field: FieldInfo) -> list[str]:
    """`## name`: what it is, how it reloads, and the table of its keys."""
    effective = getattr(SidecarConfig(), name)
    lines = [f"## `{name}`", "", field.description or "", "", _reload_line(name), ""]
    if name == "upstreams":
        lines += [
            "The built-in upstream names: those with a URL always exist; the others exist once "
            "given one (`--upstream azure=https://NAME.openai.azure.com`). An entry of the same "
            "name in the file replaces one; its `protocol` and `provider` default to the row's. "
            "A call whose path (or, on a path no protocol claims, whose credential header) is a "
            "built-in provider's goes only to that provider's upstream; when it is not "
            "configured the call is answered with a 400 in the provider's error shape, never "
            "sent elsewhere.",
            "",
        ]
        lines += ["| name | protocol | provider | url |", "|---|---|---|---|"]
        lines += [
            f"| `{upstream}` | `{row.protocol}` | `{row.provider}` | "
            f"{row.url or f'none (e.g. {row.example_url})'} |"
            for upstream, row in BUILTIN_UPSTREAMS.items()
        ]
        lines.append("")
    rows = [KeyDoc(name, field_type(field), format_value(effective), field.description or "")]
    for inner, joint in nested_models(field.annotation):
        rows += iter_key_docs(inner, f"{name}{joint}")
    return [*lines, *_key_table(rows), ""]


def _precedence() -> list[str]:
    env = ENV_PREFIX
    return [
        "## Where settings come from",
        "",
        "A YAML file holds every setting; a few also come from flags of `model-sidecar serve` "
        "and from the environment. **Flags beat the environment, which beats the file**; keys "
        "nobody sets keep the defaults below. Unknown keys are errors, and every error is "
        "reported at once, with where it is.",
        "",
        "| setting | flag | environment | file |",
        "|---|---|---|---|",
        f"| the config file | `--config FILE` | `{env}CONFIG` | — |",
        f"| proxy listener | `--listen HOST:PORT` | `{env}LISTEN` | `listen` |",
        f"| admin listener | `--admin-listen HOST:PORT` | `{env}ADMIN_LISTEN` | `admin_listen` |",
        f"| admin token file | `--admin-token-file FILE` | `{env}ADMIN_TOKEN_FILE` "
        "| `admin_token_file` |",
        f"| upstream URLs | `--upstream NAME=URL` (repeatable) "
        f"| `{env}UPSTREAMS=NAME=URL,NAME=URL` | `upstreams.<name>.url` |",
        "",
        "A flag or variable that names an upstream of the file replaces only its URL; a "
        "built-in name (`openai`, `anthropic`, `gemini`, `azure`, `vertex`, `ollama`, "
        "`bedrock`) gets its own protocol; any other new name becomes an OpenAI-compatible "
        "upstream that claims the path prefix `/NAME`.",
        "",
        "`model-sidecar check-config FILE` validates a file (with the environment applied) and "
        "prints the effective configuration, or every error at once (exit 1), each with its "
        "`file:line` (or the flag or variable that set the value), in plain words, with a "
        "suggestion for a misspelt key or value; a FILE that cannot be read exits 2.",
        "",
    ]


def _reloads() -> list[str]:
    interval = RELOAD_INTERVAL_SECONDS
    restart = ", ".join(f"`{name}`" for name in RESTART_SECTIONS)
    live = ", ".join(
        f"`{name}`" for name in SidecarConfig.model_fields if name not in RESTART_SECTIONS
    )
    return [
        "## Reloading",
        "",
        "`model-sidecar serve` loads the configuration again on `SIGHUP`, and when the config "
        f"file changes (checked every {interval:g} s, following symlinks, so a Kubernetes "
        "ConfigMap update counts). A reload reads the file and applies the same flags and "
        "environment on top. An invalid configuration is rejected with every error logged, and "
        "the running one keeps serving; a valid one is swapped in at once, and calls under way "
        "finish on the configuration they started with. `/status` on the admin listener shows "
        "`config_reloads` (count, time, last errors).",
        "",
        f"Reloaded live: {live}. Need a restart: {restart}; a reload that changes them logs a "
        "warning and keeps the running values. Each section below says which applies.",
        "",
    ]


def _tracing() -> list[str]:
    otlp = "OTEL_EXPORTER_OTLP_"
    capture = ", ".join(f"`{value}`" for value in CAPTURE_CONTENT_VALUES)
    rows = [
        (
            "OTEL_TRACES_EXPORTER",
            "`otlp`",
            "`otlp` (to the collector at the endpoint below), `console` (one JSON line per span "
            "on stdout, no collector needed: for local debugging), `otlp,console` (both), or "
            "`none`.",
        ),
        (
            f"{otlp}ENDPOINT",
            "unset",
            "Collector URL; OTLP export is on when it (or the `TRACES_` variant) is set. With "
            "`http/protobuf`, `/v1/traces` is appended; the `TRACES_` variant is used as is.",
        ),
        (f"{otlp}PROTOCOL", "`http/protobuf`", "`http/protobuf` or `grpc`."),
        (f"{otlp}HEADERS", "unset", "`key=value,key=value` sent with every export."),
        (f"{otlp}TIMEOUT", f"`{DEFAULT_EXPORT_TIMEOUT_MS}`", "Export timeout in milliseconds."),
        (f"{otlp}COMPRESSION", "none", "`gzip` compresses exports."),
        (
            f"{otlp}INSECURE",
            "`false`",
            "gRPC endpoints without a scheme: `true` for plaintext (`http://` and `https://` "
            "decide by themselves).",
        ),
        (f"{otlp}CERTIFICATE", "unset", "CA bundle (PEM) that verifies the collector."),
        (f"{otlp}CLIENT_KEY", "unset", "Client private key (PEM) for mutual TLS."),
        (f"{otlp}CLIENT_CERTIFICATE", "unset", "Client certificate (PEM) for mutual TLS."),
        ("OTEL_SERVICE_NAME", f"`{DEFAULT_SERVICE_NAME}`", "`service.name` of the spans."),
        ("OTEL_RESOURCE_ATTRIBUTES", "unset", "More resource attributes, `key=value,...`."),
        (
            "OTEL_TRACES_SAMPLER",
            "`parentbased_always_on`",
            "`always_on`, `always_off`, `traceidratio`, or `parentbased_` + one of them.",
        ),
        ("OTEL_TRACES_SAMPLER_ARG", "`1.0`", "The ratio of `traceidratio` (0 to 1)."),
        ("OTEL_SDK_DISABLED", "`false`", "`true` turns tracing off."),
        (
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            "unset",
            f"{capture}: record prompts and outputs on spans, at most "
            "`telemetry.capture_content_max_chars` per message.",
        ),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "`2048`", "Spans waiting for export; more are dropped."),
        ("OTEL_BSP_SCHEDULE_DELAY", "`5000`", "Milliseconds between exports."),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "`512`", "Spans per export."),
        ("OTEL_BSP_EXPORT_TIMEOUT", "`30000`", "Milliseconds an export may take."),
        (
            "OTEL_SEMCONV_STABILITY_OPT_IN",
            "unset",
            "`gen_ai_latest_experimental`: metric and span names of the GenAI conventions' "
            "newest release; `gen_ai_latest_experimental/dup`: both generations (see "
            "docs/metrics.md). Wins over `telemetry.semconv_stability_opt_in`.",
        ),
        (
            "OTEL_METRICS_EXPORTER",
            "unset",
            "`otlp` also pushes the metrics over OTLP (`OTEL_EXPORTER_OTLP_METRICS_*` settings "
            "first, then `OTEL_EXPORTER_OTLP_*`), cumulative temporality.",
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", "`60000`", "Milliseconds between OTLP metric exports."),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "`30000`", "Milliseconds an OTLP metric export may take."),
    ]
    lines = [
        "## Tracing (`OTEL_*` variables)",
        "",
        "Spans are configured only by the standard OpenTelemetry variables, read once at "
        "start-up. Every `OTEL_EXPORTER_OTLP_*` variable has an `OTEL_EXPORTER_OTLP_TRACES_*` "
        "variant that wins over it.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{name}` | {default} | {_cell(meaning)} |" for name, default, meaning in rows]
    return [*lines, ""]


def render_markdown() -> str:
    """The full text of docs/configuration.md."""
    fields = SidecarConfig.model_fields
    contents = ", ".join(f"[`{name}`](#{name})" for name in fields)
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m sidecar.config.doc` from the pydantic models in "
        "sidecar/config/. Do not edit by hand: CI runs it "
        "with --check. -->",
        "",
        "Every key is optional unless marked **required**. In paths, `<name>` stands for a key "
        "you choose (an upstream's or a model's name) and `[]` for each item of a list.",
        "",
        *_precedence(),
        *_reloads(),
        *_tracing(),
        "## Keys",
        "",
        f"Sections: {contents}.",
        "",
    ]
    for name, field in fields.items():
        lines += _section(name, field)
    lines += [
        EXAMPLE_HEADING,
        "",
        "Every key, at its default except for the upstreams, prices, experiments and audit, "
        "which show typical use (`model-sidecar check-config` accepts it):",
        "",
        "```yaml",
        EXAMPLE_YAML.rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the reference, or with --check report whether it is up to date (exit 1 if not)."""
    return run_doc_command(
        argv, module="sidecar.config.doc", default_path=DEFAULT_PATH, render=render_markdown
    )


if __name__ == "__main__":
    sys.exit(main())
