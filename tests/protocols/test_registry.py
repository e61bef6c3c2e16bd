"""Which protocol owns which path."""

from __future__ import annotations

import pytest

from sidecar.config.models import BUILTIN_UPSTREAMS, PROTOCOLS
from sidecar.protocols.anthropic import AnthropicProtocol
from sidecar.protocols.azure import AzureProtocol
from sidecar.protocols.bedrock import BedrockProtocol
from sidecar.protocols.gemini import GeminiProtocol
from sidecar.protocols.ollama import OllamaProtocol
from sidecar.protocols.openai import OpenAIProtocol
from sidecar.protocols.registry import default_protocols, protocol_for_path, protocol_named
from sidecar.protocols.vertex import VertexProtocol


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/chat/completions", "openai"),
        ("/v1/completions", "openai"),
        ("/v1/embeddings", "openai"),
        ("/v1/responses", "openai"),
        ("/v1/responses/resp_1/input_items", "openai"),
        ("/v1/messages", "anthropic"),
        ("/v1/messages/count_tokens", "anthropic"),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", "gemini"),
        ("/v1alpha/models/gemini-2.0-flash-exp:generateContent", "gemini"),
        ("/v1/models/gemini-2.5-pro:countTokens", "gemini"),
        ("/v1beta/models", "gemini"),
        ("/v1/models/gemini-2.5-flash:batchEmbedContents", "gemini"),
        ("/openai/deployments/prod-gpt4o/chat/completions", "azure"),
        ("/openai/v1/responses", "azure"),
        ("/openai/responses", "azure"),
        ("/v1/projects/p/locations/us-east5/publishers/anthropic/models/m:rawPredict", "vertex"),
        ("/v1beta1/projects/p/locations/l/publishers/google/models/g:generateContent", "vertex"),
        ("/api/chat", "ollama"),
        ("/api/generate", "ollama"),
        ("/api/embed", "ollama"),
        ("/api/tags", "ollama"),
        ("/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse", "bedrock"),
        ("/model/meta.llama3-1-8b-instruct-v1%3A0/invoke-with-response-stream", "bedrock"),
    ],
)
def test_standard_paths(path: str, name: str) -> None:
    protocol = protocol_for_path(path)
    assert protocol is not None
    assert protocol.name == name


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1/models",
        "/v1/models/gpt-4o",
        "/v1/files",
        "/healthz",
        "/v2/chat/completions",
        "/chat/completions",
        "/api/v1/chat/completions",  # OpenRouter's base URL ends in /api/v1
        "/openai",
    ],
)
def test_unclaimed_paths(path: str) -> None:
    assert protocol_for_path(path) is None


def test_protocols_by_name_are_built_once_and_immutable() -> None:
    protocols = default_protocols()
    assert protocols is default_protocols()
    assert list(protocols) == [
        "openai",
        "anthropic",
        "gemini",
        "azure",
        "vertex",
        "ollama",
        "bedrock",
    ]
    assert isinstance(protocol_named("openai"), OpenAIProtocol)
    assert isinstance(protocol_named("anthropic"), AnthropicProtocol)
    assert isinstance(protocol_named("gemini"), GeminiProtocol)
    assert isinstance(protocol_named("azure"), AzureProtocol)
    assert isinstance(protocol_named("vertex"), VertexProtocol)
    assert isinstance(protocol_named("ollama"), OllamaProtocol)
    assert isinstance(protocol_named("bedrock"), BedrockProtocol)
    assert [p.provider_name for p in protocols.values()] == [
        "openai",
        "anthropic",
        "gcp.gemini",
        "azure.ai.openai",
        "gcp.vertex_ai",
        "ollama",
        "aws.bedrock",
    ]
    with pytest.raises(TypeError):
        protocols["x"] = protocols["openai"]  # type: ignore[index]
    with pytest.raises(KeyError, match="bedrockx"):
        protocol_named("bedrockx")


def test_every_builtin_upstream_has_its_protocol_and_provider() -> None:
    # The config's one table of built-in upstreams and the protocol registry agree.
    protocols = default_protocols()
    assert set(PROTOCOLS) == set(protocols)
    for name, row in BUILTIN_UPSTREAMS.items():
        assert protocols[row.protocol].provider_name == row.provider, name
