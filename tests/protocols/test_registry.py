"""Which protocol owns which path."""

from __future__ import annotations

import pytest

from sidecar.protocols.anthropic import AnthropicProtocol
from sidecar.protocols.bedrock import BedrockProtocol
from sidecar.protocols.gemini import GeminiProtocol
from sidecar.protocols.openai import OpenAIProtocol
from sidecar.protocols.registry import default_protocols, protocol_for_path, protocol_named


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
    ["/", "/v1/models", "/v1/models/gpt-4o", "/v1/files", "/healthz", "/v2/chat/completions"],
)
def test_unclaimed_paths(path: str) -> None:
    assert protocol_for_path(path) is None


def test_protocols_by_name_are_built_once_and_immutable() -> None:
    protocols = default_protocols()
    assert protocols is default_protocols()
    assert list(protocols) == ["openai", "anthropic", "gemini", "bedrock"]
    assert isinstance(protocol_named("openai"), OpenAIProtocol)
    assert isinstance(protocol_named("anthropic"), AnthropicProtocol)
    assert isinstance(protocol_named("gemini"), GeminiProtocol)
    assert isinstance(protocol_named("bedrock"), BedrockProtocol)
    assert [p.provider_name for p in protocols.values()] == [
        "openai",
        "anthropic",
        "gcp.gemini",
        "aws.bedrock",
    ]
    with pytest.raises(TypeError):
        protocols["x"] = protocols["openai"]  # type: ignore[index]
    with pytest.raises(KeyError, match="vertex"):
        protocol_named("vertex")
