"""What the protocols read from a request for the span attributes the conventions define:
output type, sampling parameters, stop sequences, conversation and previous response ids,
OpenAI's service tier and API type, embeddings formats and dimensions."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.protocols.anthropic import AnthropicProtocol
from sidecar.protocols.gemini import GeminiProtocol
from sidecar.protocols.openai import OpenAIProtocol

OPENAI = OpenAIProtocol()
GEMINI_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"


@pytest.mark.parametrize(
    ("body", "output_type"),
    [
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "json"),
        ({"response_format": {"type": "json_object"}}, "json"),
        ({"response_format": {"type": "text"}}, "text"),
        ({"modalities": ["text", "audio"], "response_format": {"type": "text"}}, "speech"),
        ({"text": {"format": {"type": "json_schema"}}}, "json"),
        ({"response_format": {"type": "something-new"}}, None),
        ({"response_format": "json"}, None),
        ({}, None),
    ],
)
def test_openai_output_type(body: dict[str, Any], output_type: str | None) -> None:
    info = OPENAI.classify("POST", "/v1/chat/completions", "", {"model": "m", **body})
    assert info.output_type == output_type


def test_openai_responses_fields() -> None:
    body = {
        "model": "gpt-4.1",
        "input": "hi",
        "conversation": {"id": "conv_9"},
        "previous_response_id": "resp_8",
        "service_tier": "flex",
        "stream": True,
    }
    info = OPENAI.classify("POST", "/v1/responses", "", body)
    assert (info.api_type, info.conversation_id, info.previous_response_id) == (
        "responses",
        "conv_9",
        "resp_8",
    )
    assert info.service_tier == "flex" and info.stream is True
    assert OPENAI.classify(
        "POST", "/v1/responses", "", {"conversation": "conv_1"}
    ).conversation_id == ("conv_1")


def test_openai_chat_and_embeddings_fields() -> None:
    chat = OPENAI.classify(
        "POST",
        "/v1/chat/completions",
        "",
        {"model": "m", "stop": "END", "frequency_penalty": 0.2, "presence_penalty": -0.1},
    )
    assert chat.api_type == "chat_completions"
    assert chat.stop_sequences == ("END",)
    assert (chat.frequency_penalty, chat.presence_penalty) == (0.2, -0.1)
    embeddings = OPENAI.classify(
        "POST", "/v1/embeddings", "", {"model": "e", "encoding_format": "base64", "dimensions": 64}
    )
    assert embeddings.api_type is None
    assert (embeddings.encoding_formats, embeddings.dimensions) == (("base64",), 64)
    assert OPENAI.classify("GET", "/v1/models", "", None).api_type is None


def test_anthropic_fields() -> None:
    info = AnthropicProtocol().classify(
        "POST",
        "/v1/messages",
        "",
        {
            "model": "claude",
            "top_k": 7,
            "stop_sequences": ["a", 3, "b"],
            "output_format": {"type": "json_schema", "schema": {}},
        },
    )
    assert (info.top_k, info.stop_sequences, info.output_type) == (7, ("a", "b"), "json")


@pytest.mark.parametrize(
    ("config", "output_type"),
    [
        ({"responseMimeType": "application/json"}, "json"),
        ({"response_mime_type": "text/plain"}, "text"),
        ({"responseModalities": ["TEXT", "IMAGE"]}, "image"),
        ({"responseModalities": ["AUDIO"]}, "speech"),
        ({"responseMimeType": "text/x.enum"}, None),
    ],
)
def test_gemini_output_type(config: dict[str, Any], output_type: str | None) -> None:
    info = GeminiProtocol().classify("POST", GEMINI_PATH, "", {"generationConfig": config})
    assert info.output_type == output_type


def test_gemini_sampling_fields() -> None:
    config = {"topK": 40, "stopSequences": ["x"], "presencePenalty": 0.5, "frequencyPenalty": 1}
    info = GeminiProtocol().classify("POST", GEMINI_PATH, "", {"generationConfig": config})
    assert (info.top_k, info.stop_sequences) == (40, ("x",))
    assert (info.presence_penalty, info.frequency_penalty) == (0.5, 1.0)
