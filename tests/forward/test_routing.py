"""Routing: built-in upstreams, a provider per upstream, and credentials that never reach
another provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from sidecar.config.load import ConfigError, load_config
from sidecar.config.models import SidecarConfig
from sidecar.forward.routing import Router, build_upstreams

SIM = "http://127.0.0.1:9"
AZURE_CHAT = "/openai/deployments/prod-gpt4o/chat/completions"
VERTEX_CLAUDE = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/c@1:rawPredict"


def router(**data: Any) -> Router:
    config = SidecarConfig.model_validate(data)
    return Router(config, build_upstreams(config))


def test_builtin_upstreams_exist_once_configured() -> None:
    plain = SidecarConfig()
    assert set(plain.upstreams) == {"openai", "anthropic", "gemini"}
    config = load_config(
        environ={"MODEL_SIDECAR_UPSTREAMS": f"azure={SIM},vertex={SIM}"},
        upstreams={"ollama": SIM},
    )
    assert {name: config.upstreams[name].protocol for name in ("azure", "vertex", "ollama")} == {
        "azure": "azure",
        "vertex": "vertex",
        "ollama": "ollama",
    }
    upstreams = build_upstreams(config)
    assert {name: upstream.provider for name, upstream in upstreams.items()} == {
        "openai": "openai",
        "anthropic": "anthropic",
        "gemini": "gcp.gemini",
        "azure": "azure.ai.openai",
        "vertex": "gcp.vertex_ai",
        "ollama": "ollama",
    }
    assert all(upstreams[name].path_prefix == "" for name in ("azure", "vertex", "ollama"))


def test_a_provider_per_upstream() -> None:
    upstreams = {
        "groq": {"url": SIM, "path_prefix": "/groq", "provider": "groq"},
        "vllm": {"url": SIM, "path_prefix": "/vllm"},
        "openai": {"url": SIM, "provider": "x_ai"},
        "azure": {"url": SIM, "provider": "my-azure"},
    }
    route = router(upstreams=upstreams).route
    assert route("/groq/v1/chat/completions").upstream.provider == "groq"
    assert route("/groq/v1/chat/completions").path == "/v1/chat/completions"
    assert route("/vllm/v1/chat/completions").upstream.provider == "openai"  # as today
    assert route("/v1/chat/completions").upstream.provider == "x_ai"
    assert route(AZURE_CHAT).upstream.provider == "my-azure"


def test_protocol_and_provider_of_a_file_entry() -> None:
    config = SidecarConfig.model_validate(
        {"upstreams": {"local": {"url": SIM, "protocol": "ollama"}}}
    )
    routed = Router(config, build_upstreams(config)).route("/api/chat")
    assert routed.upstream.name == "local" and routed.upstream.provider == "ollama"
    with pytest.raises(ValueError, match="expected one of openai, anthropic, gemini, azure"):
        SidecarConfig.model_validate({"upstreams": {"x": {"url": SIM, "protocol": "grpc"}}})
    with pytest.raises(ValueError, match="expected a provider name"):
        SidecarConfig.model_validate({"upstreams": {"x": {"url": SIM, "provider": " "}}})


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text("upstreams:\n  azure: {url: 'http://a', provider: '', protocol: azur}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    text = str(caught.value)
    assert "upstreams.azure.provider" in text and "upstreams.azure.protocol" in text


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (AZURE_CHAT, "azure"),
        ("/openai/v1/chat/completions", "azure"),
        (VERTEX_CLAUDE, "vertex"),
        ("/v1beta1/projects/p/locations/l/publishers/google/models/g:generateContent", "vertex"),
        ("/api/chat", "ollama"),
    ],
)
def test_a_path_of_an_unconfigured_provider_is_refused_not_forwarded(path: str, name: str) -> None:
    routed = router().route(path, CIMultiDict({"Authorization": "Bearer secret"}), "")
    assert routed.refusal is not None
    assert f"no upstream {name!r} is configured for {path}" in routed.refusal
    assert f"--upstream {name}=" in routed.refusal
    assert routed.upstream.name == name and routed.upstream.host == ""
    assert "secret" not in routed.refusal
    configured = router(upstreams={name: {"url": SIM}}).route(path)
    assert configured.refusal is None and configured.upstream.name == name


@pytest.mark.parametrize(
    ("headers", "query", "name"),
    [
        ({"api-key": "k"}, "", "azure"),
        ({"X-Goog-Api-Key": "k"}, "", "gemini"),
        ({}, "alt=sse&key=AIzaSyTEST", "gemini"),
        ({"anthropic-version": "2023-06-01", "x-api-key": "k"}, "", "anthropic"),
    ],
)
def test_an_unclaimed_path_with_a_providers_credential_goes_only_to_that_provider(
    headers: dict[str, str], query: str, name: str
) -> None:
    upstreams = {n: {"url": SIM} for n in ("azure", "openai")}
    routed = router(upstreams=upstreams).route("/v1/models", CIMultiDict(headers), query)
    assert routed.upstream.name == name and routed.refusal is None
    assert routed.unclaimed and routed.protocol.name == name
    if name == "azure":
        refused = router().route("/v1/models", CIMultiDict(headers), query)
        assert refused.refusal is not None and refused.upstream.name == "azure"


def test_an_unclaimed_path_without_such_a_credential_goes_to_the_default() -> None:
    route = router(default_upstream="anthropic").route
    for headers in ({}, {"Authorization": "Bearer x"}, {"x-api-key": "k"}):
        routed = route("/chat/completions", CIMultiDict(headers), "key=not-google")
        assert routed.upstream.name == "anthropic" and routed.unclaimed
        assert routed.upstream.provider == "anthropic"
    # The default upstream's own credential keeps it there.
    gemini = router(default_upstream="gemini").route
    assert gemini("/x", CIMultiDict({"x-goog-api-key": "k"}), "").upstream.name == "gemini"


def test_a_prefixed_openai_upstream_no_longer_catches_other_providers_paths() -> None:
    # Gemini's standard paths with no unprefixed gemini upstream: refused, never sent to the
    # default upstream (which would get the Google key).
    upstreams = {"gemini": {"url": SIM, "path_prefix": "/g"}}
    routed = router(upstreams=upstreams).route("/v1beta/models/m:generateContent")
    assert routed.refusal is not None and routed.upstream.name == "gemini"
    assert router(upstreams=upstreams).route("/g/v1beta/models/m:generateContent").refusal is None


def test_deployments_are_kept_per_upstream() -> None:
    upstreams = {"azure": {"url": SIM, "deployments": {"prod-gpt4o": "gpt-4o"}}}
    routed = router(upstreams=upstreams).route(AZURE_CHAT)
    assert dict(routed.upstream.deployments) == {"prod-gpt4o": "gpt-4o"}
    assert dict(router().route("/v1/chat/completions").upstream.deployments) == {}
