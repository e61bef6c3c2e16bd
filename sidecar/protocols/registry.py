"""Which wire protocol owns a request path, and the protocols by name."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from sidecar.protocols.anthropic import AnthropicProtocol
from sidecar.protocols.azure import AzureProtocol
from sidecar.protocols.bedrock import BedrockProtocol
from sidecar.protocols.gemini import GeminiProtocol
from sidecar.protocols.interface import WireProtocol
from sidecar.protocols.ollama import OllamaProtocol
from sidecar.protocols.openai import OpenAIProtocol
from sidecar.protocols.vertex import VertexProtocol


@cache
def default_protocols() -> Mapping[str, WireProtocol]:
    """Every protocol by name, built once (they hold no per-call state). Each claims its
    own paths: no two claim the same one."""
    protocols: tuple[WireProtocol, ...] = (
        OpenAIProtocol(),
        AnthropicProtocol(),
        GeminiProtocol(),
        AzureProtocol(),
        VertexProtocol(),
        OllamaProtocol(),
        BedrockProtocol(),
    )
    return MappingProxyType({protocol.name: protocol for protocol in protocols})


def protocol_for_path(path: str) -> WireProtocol | None:
    """The protocol that claims a standard path, or None (default upstream, operation other)."""
    for protocol in default_protocols().values():
        if protocol.claims(path):
            return protocol
    return None


def protocol_named(name: str) -> WireProtocol:
    """The protocol called `name` (`openai`, `anthropic`, `gemini`, `azure`, `vertex`,
    `ollama`, `bedrock`, ...); KeyError otherwise."""
    try:
        return default_protocols()[name]
    except KeyError:
        raise KeyError(f"unknown wire protocol {name!r}") from None
