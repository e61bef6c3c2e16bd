"""The sidecar's configuration: pydantic models for the file, flags and environment."""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from sidecar.aws.region import is_region, region_from_url
from sidecar.config.enrich import ConfidenceConfig, CostConfig, RepeatabilityConfig
from sidecar.config.experiments import (
    AuditConfig,
    ConfigProblems,
    ExperimentConfig,
    FeedbackConfig,
    Problem,
    check_experiments,
)
from sidecar.config.objectives import AttributionConfig, BudgetConfig, SloConfig
from sidecar.config.retry import RetryConfig
from sidecar.config.strict import Strict
from sidecar.config.ui import UiConfig


@dataclass(frozen=True, slots=True)
class BuiltinUpstream:
    """An upstream name the sidecar knows: the wire protocol that claims its paths, the
    `gen_ai.provider.name` it reports, and its public endpoint (None: it exists only when
    configured, e.g. `--upstream azure=https://NAME.openai.azure.com`)."""

    protocol: str
    provider: str
    url: str | None
    # A URL to suggest when a call needs this upstream and it is not configured.
    example_url: str = "URL"


# The one table of built-in upstreams; every other module derives from it.
BUILTIN_UPSTREAMS: dict[str, BuiltinUpstream] = {
    "openai": BuiltinUpstream("openai", "openai", "https://api.openai.com"),
    "anthropic": BuiltinUpstream("anthropic", "anthropic", "https://api.anthropic.com"),
    "gemini": BuiltinUpstream("gemini", "gcp.gemini", "https://generativelanguage.googleapis.com"),
    "azure": BuiltinUpstream("azure", "azure.ai.openai", None, "https://NAME.openai.azure.com"),
    "vertex": BuiltinUpstream(
        "vertex", "gcp.vertex_ai", None, "https://REGION-aiplatform.googleapis.com"
    ),
    "ollama": BuiltinUpstream("ollama", "ollama", None, "http://127.0.0.1:11434"),
    "bedrock": BuiltinUpstream(
        "bedrock", "aws.bedrock", None, "https://bedrock-runtime.REGION.amazonaws.com"
    ),
}

# Every wire protocol an upstream may speak.
PROTOCOLS = tuple(dict.fromkeys(row.protocol for row in BUILTIN_UPSTREAMS.values()))

# The built-in upstreams that always exist, at their public endpoints.
DEFAULT_UPSTREAM_URLS = {
    name: row.url for name, row in BUILTIN_UPSTREAMS.items() if row.url is not None
}

# Protocols whose requests the sidecar signs itself with AWS SigV4 (the app's signature is
# bound to the sidecar's host and cannot be forwarded), and the service they are signed for.
AWS_SIGNING_SERVICES = {"bedrock": "bedrock"}


def _check_host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:8788), got {value!r}")
    return value


def split_host_port(value: str) -> tuple[str, int]:
    """('127.0.0.1', 8788) from '127.0.0.1:8788'; brackets around IPv6 hosts are removed."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class UpstreamConfig(Strict):
    """One upstream provider endpoint."""

    url: str = Field(
        description="Base URL of the provider (http or https; no credentials, query or "
        "fragment); the app's path is appended to it."
    )
    protocol: str = Field(
        default="openai",
        description="Wire protocol it speaks, one of "
        + ", ".join(PROTOCOLS)
        + "; an upstream with a built-in name defaults to that name's.",
    )
    provider: str | None = Field(
        default=None,
        description="The `gen_ai.provider.name` its calls report (e.g. `groq`, `deepseek`, "
        "`mistral_ai`, `x_ai`, `perplexity`, or any string); default: the built-in "
        "upstream's or the protocol's own (`openai` for OpenAI-compatible servers).",
    )
    path_prefix: str = Field(
        default="",
        description="Requests under this path prefix go to this upstream, prefix removed.",
    )
    region: str | None = Field(
        default=None,
        description="AWS region the sidecar signs requests for (protocol bedrock); default: "
        "the region in the URL's host (bedrock-runtime.REGION.amazonaws.com).",
    )
    deployments: dict[str, str] = Field(
        default_factory=dict,
        description="Azure OpenAI deployment names (or any model alias the upstream serves) "
        "mapped to the model they serve: labels and prices a call whose response names no "
        "model.",
    )

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        if value not in PROTOCOLS:
            close = difflib.get_close_matches(value, PROTOCOLS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"expected one of {', '.join(PROTOCOLS)}, got {value!r}{hint}")
        return value

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("expected a provider name such as groq, or no provider key")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
        if parts.query or parts.fragment:
            raise ValueError("an upstream URL may not carry a query or fragment")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "an upstream URL may not carry credentials (user:password@); "
                "the sidecar forwards the app's own credentials"
            )
        return value.rstrip("/")

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and (not value.startswith("/") or value == "/"):
            raise ValueError(f"expected a path such as /vllm, got {value!r}")
        return value.rstrip("/")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not is_region(value):
            raise ValueError(f"expected an AWS region such as us-east-1, got {value!r}")
        return value

    @property
    def aws_region(self) -> str | None:
        """The region requests are signed for: `region`, else the one in the URL's host."""
        return self.region or region_from_url(self.url)


def _aws_signing_problem(name: str, upstream: UpstreamConfig) -> str | None:
    """Why an upstream whose requests the sidecar signs cannot be used (it needs a region and
    botocore), or None."""
    if upstream.aws_region is None:
        return (
            f"upstream {name!r}: cannot tell the AWS region from {upstream.url}: set region "
            "(e.g. region: us-east-1) or use https://bedrock-runtime.REGION.amazonaws.com"
        )
    if importlib.util.find_spec("botocore") is None:
        return (
            f"upstream {name!r} is signed with AWS SigV4, which needs botocore: "
            "pip install 'model-sidecar[aws]'"
        )
    return None


class LimitsConfig(Strict):
    """Sizes and timeouts of the forwarding path."""

    max_request_body_bytes: int = Field(
        default=32 * 1024 * 1024, gt=0, description="Larger request bodies get a JSON 413."
    )
    connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest wait to connect to an upstream (then 502)."
    )
    read_timeout_seconds: float = Field(
        default=600.0, gt=0, description="Longest wait for the next upstream bytes."
    )
    client_read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Longest wait for a client's headers and body."
    )
    max_connections_per_upstream: int = Field(default=0, ge=0, description="0 means unlimited.")
    shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM/SIGINT, how long in-flight calls and streams may take to finish.",
    )


class TelemetryConfig(Strict):
    """What is measured and how it is exported."""

    max_model_labels: int = Field(
        default=100,
        gt=0,
        description="Distinct values per model label; later models are exported as `other`.",
    )
    inject_stream_usage: bool = Field(
        default=True,
        description="Ask OpenAI streams for usage and remove it from the app's stream when "
        "the app did not ask for it.",
    )
    propagate_traceparent: bool = Field(
        default=True,
        description="Send the call's span upstream as `traceparent` (when tracing is on).",
    )
    capture_content_max_chars: int = Field(
        default=16384,
        ge=0,
        description="Characters of content kept per message on spans when "
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT opts in; 0 never captures.",
    )
    queue_size: int = Field(
        default=10000,
        gt=0,
        description="Finished calls waiting for the sinks; past it they are dropped and counted.",
    )
    semconv_stability_opt_in: Literal[
        "", "gen_ai_latest_experimental", "gen_ai_latest_experimental/dup"
    ] = Field(
        default="",
        description="GenAI convention generation of metric and span names: empty for "
        "v1.41.0, `gen_ai_latest_experimental` for the semantic-conventions-genai release, "
        "`gen_ai_latest_experimental/dup` for both (docs/metrics.md). "
        "OTEL_SEMCONV_STABILITY_OPT_IN wins when it names one of these.",
    )


class LogConfig(Strict):
    """JSON-lines logging."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level written (JSON lines on stderr)."
    )
    access_log: bool = Field(
        default=False, description="One JSON line per call (no bodies, no credentials)."
    )


class SidecarConfig(Strict):
    """The whole configuration file."""

    listen: str = Field(
        default="127.0.0.1:8788", description="HOST:PORT of the proxy the apps call."
    )
    admin_listen: str = Field(
        default="127.0.0.1:9788",
        description="HOST:PORT of /metrics, /healthz, /readyz and /status (open to any peer) "
        "and the control endpoints (token, or loopback peers only).",
    )
    admin_token_file: str | None = Field(
        default=None,
        description="File holding the token that control endpoints of the admin listener "
        "require as `Authorization: Bearer <token>` (e.g. a mounted Secret); re-read on reload "
        "and when it changes. Unset: control endpoints answer loopback peers only.",
    )
    upstreams: dict[str, UpstreamConfig] = Field(
        default_factory=dict,
        description="Providers by name; openai, anthropic and gemini always exist (public "
        "URLs unless set here); azure, vertex and ollama exist when given a URL.",
    )
    default_upstream: str = Field(
        default="openai", description="Where paths that no protocol or prefix claims go."
    )
    limits: LimitsConfig = Field(
        default_factory=LimitsConfig, description="Sizes and timeouts of the forwarding path."
    )
    telemetry: TelemetryConfig = Field(
        default_factory=TelemetryConfig, description="What is measured and how it is exported."
    )
    log: LogConfig = Field(default_factory=LogConfig, description="JSON-lines logging.")
    cost: CostConfig = Field(default_factory=CostConfig, description="Pricing of every call.")
    confidence: ConfidenceConfig = Field(
        default_factory=ConfidenceConfig, description="How sure the model was."
    )
    retries: RetryConfig = Field(
        default_factory=RetryConfig,
        description="Client retry detection and the sidecar's own retries.",
    )
    repeatability: RepeatabilityConfig = Field(
        default_factory=RepeatabilityConfig,
        description="Same vs different outputs of repeated deterministic calls.",
    )
    experiments: list[ExperimentConfig] = Field(
        default_factory=list,
        description="Split or shadow traffic between models; see docs/experiments.md.",
    )
    feedback: FeedbackConfig = Field(
        default_factory=FeedbackConfig, description="Outcomes of calls posted by the app."
    )
    audit: AuditConfig = Field(
        default_factory=AuditConfig, description="Opt-in sample of calls for human audits."
    )
    ui: UiConfig = Field(
        default_factory=UiConfig, description="The live comparison page on the admin listener."
    )
    # Quota, SLOs and cost by team (issue #21; docs/slos.md, docs/attribution.md).
    slos: list[SloConfig] = Field(
        default_factory=list,
        description="Service level objectives: rules and burn-rate alerts from "
        "`model-sidecar slo-rules`; see docs/slos.md.",
    )
    attribution: AttributionConfig | None = Field(
        default=None,
        description="A request header (team, feature) that becomes the bounded `attribution` "
        "label of the calls, tokens and cost counters; see docs/attribution.md.",
    )
    budgets: dict[str, BudgetConfig] = Field(
        default_factory=dict,
        description="Spend budgets by attribution value (USD per day or month): a forecast "
        "and the CostBudgetAtRisk alert from `model-sidecar slo-rules`.",
    )

    @model_validator(mode="after")
    def _check_objectives(self) -> SidecarConfig:
        problems: list[Problem] = []
        names = [slo.name for slo in self.slos]
        for index, name in enumerate(names):
            if name in names[:index]:
                problems.append(Problem(("slos", index, "name"), f"two SLOs are named {name!r}"))
        if self.budgets and self.attribution is None:
            problems.append(
                Problem(("budgets",), "budgets need `attribution:` (the header they split by)")
            )
        elif self.attribution is not None and self.attribution.values is not None:
            for value in self.budgets:
                if value not in self.attribution.values and value != "other":
                    problems.append(
                        Problem(
                            ("budgets", value),
                            f"budget {value!r} is not one of attribution.values "
                            f"({', '.join(self.attribution.values)}) nor `other`",
                        )
                    )
        if problems:
            raise ConfigProblems(problems)
        return self

    @field_validator("listen", "admin_listen", mode="before")
    @classmethod
    def _listen(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:8788), got {value!r}")
        return _check_host_port(value)

    @model_validator(mode="before")
    @classmethod
    def _fill_upstreams(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        upstreams = dict(data.get("upstreams") or {})
        for name, row in BUILTIN_UPSTREAMS.items():
            entry = upstreams.get(name)
            if entry is None and row.url is not None:
                upstreams[name] = {"url": row.url, "protocol": row.protocol}
            elif isinstance(entry, dict) and "protocol" not in entry:
                upstreams[name] = {**entry, "protocol": row.protocol}
        return {**data, "upstreams": upstreams}

    @model_validator(mode="after")
    def _check_upstreams(self) -> SidecarConfig:
        problems: list[Problem] = []
        if self.default_upstream not in self.upstreams:
            known = sorted(self.upstreams)
            close = difflib.get_close_matches(self.default_upstream, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                Problem(
                    ("default_upstream",),
                    f"default_upstream {self.default_upstream!r} is not one of the upstreams "
                    f"({', '.join(known)}){hint}",
                )
            )
        prefixes: dict[str, str] = {}
        for name, upstream in self.upstreams.items():
            if upstream.path_prefix:
                at = ("upstreams", name, "path_prefix")
                if upstream.path_prefix in prefixes:
                    problems.append(
                        Problem(
                            at,
                            f"upstreams {prefixes[upstream.path_prefix]!r} and {name!r} "
                            f"claim the same path_prefix {upstream.path_prefix!r}",
                        )
                    )
                if upstream.path_prefix == "/_sidecar" or upstream.path_prefix.startswith(
                    "/_sidecar/"
                ):
                    problems.append(
                        Problem(at, f"upstream {name!r}: /_sidecar is reserved for the sidecar")
                    )
                prefixes[upstream.path_prefix] = name
            if upstream.protocol in AWS_SIGNING_SERVICES:
                aws_problem = _aws_signing_problem(name, upstream)
                if aws_problem is not None:
                    problems.append(Problem(("upstreams", name), aws_problem))
        problems += check_experiments(self.experiments, self.upstreams)
        if problems:
            raise ConfigProblems(problems)
        return self

    def protocol_upstream(self, protocol: str) -> str | None:
        """The upstream that serves a protocol's standard paths: the one named after it,
        else the first other one speaking it, without a path prefix; None when there is none
        (such calls are refused, never sent to another provider)."""
        named = self.upstreams.get(protocol)
        if named is not None and named.protocol == protocol and not named.path_prefix:
            return protocol
        for name, upstream in self.upstreams.items():
            if upstream.protocol == protocol and not upstream.path_prefix:
                return name
        return None

    def provider_of(self, name: str) -> str | None:
        """The `gen_ai.provider.name` configured or built in for upstream `name` (None: the
        protocol's own)."""
        upstream = self.upstreams[name]
        if upstream.provider is not None:
            return upstream.provider
        row = BUILTIN_UPSTREAMS.get(name)
        if row is not None and row.protocol == upstream.protocol:
            return row.provider
        return None
