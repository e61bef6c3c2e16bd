"""Which models to probe: `--model NAME:MODEL` resolved against the sidecar's upstreams and keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.config.models import DEFAULT_UPSTREAM_URLS, PROTOCOLS, SidecarConfig
from sidecar.tools.traffic import PLACEHOLDER_KEY, ModelTarget

# Where each protocol's API key is read from, first set wins.
KEY_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "azure": ("AZURE_OPENAI_API_KEY",),
}


@dataclass(frozen=True)
class Upstream:
    """An upstream as the sidecar knows it: URL, protocol and path prefix."""

    url: str
    protocol: str
    path_prefix: str = ""


@dataclass(frozen=True)
class ProbeTarget:
    """One `--model` to probe, or the reason it cannot be."""

    label: str  # as the user wrote it, e.g. "openai:gpt-4o-mini"
    target: ModelTarget | None = None
    upstream: str = ""  # the upstream name the sidecar labels its calls with
    api_key: str = field(default=PLACEHOLDER_KEY, repr=False)
    problem: str | None = None

    @property
    def metrics_key(self) -> tuple[str, str]:
        """The (upstream, gen_ai_request_model) labels this target's calls carry."""
        return (self.upstream, self.target.model if self.target else "")


def upstreams_of_config(config: SidecarConfig) -> dict[str, Upstream]:
    """The upstreams of an in-process sidecar's config."""
    return {
        name: Upstream(upstream.url, upstream.protocol, upstream.path_prefix)
        for name, upstream in config.upstreams.items()
    }


def upstreams_of_status(status: Mapping[str, Any]) -> dict[str, Upstream]:
    """The upstreams listed by a running sidecar's /status."""
    listed = status.get("upstreams") or {}
    return {
        name: Upstream(str(item["url"]), str(item["protocol"]), str(item.get("path_prefix") or ""))
        for name, item in listed.items()
    }


def resolve_targets(
    texts: Sequence[str], upstreams: Mapping[str, Upstream], environ: Mapping[str, str]
) -> list[ProbeTarget]:
    """One ProbeTarget per `--model`, in order; problems are per model, never raised.

    NAME is a protocol (openai, anthropic, gemini: the sidecar's upstream for it) or the name
    of an upstream (e.g. `vllm` from `--upstream vllm=URL`). A key is required only when the
    upstream is the provider's public endpoint; anywhere else a placeholder stands in. A
    named upstream reads only NAME_API_KEY: a provider's key never goes to another server.
    """
    resolved: list[ProbeTarget] = []
    seen: dict[tuple[str, str], str] = {}
    for text in texts:
        probe = _resolve(text, upstreams, environ)
        if probe.problem is None:
            if probe.metrics_key in seen:
                earlier = seen[probe.metrics_key]
                probe = ProbeTarget(text, problem=f"same model and upstream as {earlier!r}")
            else:
                seen[probe.metrics_key] = text
        resolved.append(probe)
    return resolved


def _resolve(
    text: str, upstreams: Mapping[str, Upstream], environ: Mapping[str, str]
) -> ProbeTarget:
    name, sep, model = text.partition(":")
    if not sep or not name or not model:
        return ProbeTarget(text, problem="expected NAME:MODEL, e.g. openai:gpt-4o-mini")
    upstream_name = _upstream_for(name, upstreams)
    if upstream_name is None:
        known = sorted({*PROTOCOLS, *upstreams})
        return ProbeTarget(
            text, problem=f"unknown provider or upstream {name!r} (known: {', '.join(known)})"
        )
    upstream = upstreams[upstream_name]
    target = ModelTarget(upstream.protocol, model, path_prefix=upstream.path_prefix)
    variables = _key_variables(name)
    key = next((environ[v] for v in variables if environ.get(v)), None)
    if key is None:
        if upstream.url.rstrip("/") == DEFAULT_UPSTREAM_URLS.get(upstream.protocol):
            return ProbeTarget(
                text,
                target,
                upstream_name,
                problem=f"no API key: set {' or '.join(variables)} (calls go to {upstream.url})",
            )
        key = PLACEHOLDER_KEY
    return ProbeTarget(text, target, upstream_name, key)


def _upstream_for(name: str, upstreams: Mapping[str, Upstream]) -> str | None:
    """The upstream serving `name`: itself if it has no path prefix or is a named one."""
    if name in upstreams:
        return name
    if name in PROTOCOLS:
        for candidate, upstream in upstreams.items():
            if upstream.protocol == name and not upstream.path_prefix:
                return candidate
    return None


def _key_variables(name: str) -> tuple[str, ...]:
    if name in KEY_VARIABLES:
        return KEY_VARIABLES[name]
    return (name.upper().replace("-", "_") + "_API_KEY",)
