"""Span attributes per convention generation, and the request and response attributes the
sidecar now knows (stream, output type, sampling parameters, conversation, previous response,
OpenAI service tier, fingerprint and API type): built from records, and end to end from the
official SDKs' calls through a sidecar to a real OTLP receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from sidecar.record import CallRecord, RequestInfo
from sidecar.telemetry.conventions import GENAI, V1_41
from sidecar.telemetry.span_attributes import SpanAttributeKeys, span_attributes
from tests.helpers.otlp import OtlpReceiver, ReceivedSpan, start_receiver
from tests.helpers.records import make_record
from tests.helpers.sdk import API_KEY
from tests.helpers.semconv import mode_environ
from tests.helpers.sidecar import SidecarFactory

V1_41_CACHE = "gen_ai.usage.cache_creation.input_tokens"
GENAI_CACHE = "gen_ai.usage.cache_write.input_tokens"
PREVIOUS = "gen_ai.request.previous_response.id"


def responses_record() -> CallRecord:
    """A streamed Responses API call that continues a conversation, with every new field."""
    record = make_record(path="/v1/responses")
    record.request = RequestInfo(
        operation="chat",
        request_model="gpt-4.1",
        stream=True,
        top_k=40,
        output_type="json",
        api_type="responses",
        service_tier="flex",
        conversation_id="conv_123",
        previous_response_id="resp_abc",
        stop_sequences=("END",),
    )
    record.response_service_tier = "flex"
    record.system_fingerprint = "fp_44709d6fcb"
    return record


@pytest.mark.parametrize(
    ("generations", "cache_keys", "previous", "top_k"),
    [
        ((V1_41,), {V1_41_CACHE}, False, 40.0),
        ((GENAI,), {GENAI_CACHE}, True, 40),
        ((V1_41, GENAI), {V1_41_CACHE, GENAI_CACHE}, True, 40),
    ],
    ids=["v1.41", "latest", "dup"],
)
def test_generation_keys(
    generations: tuple[Any, ...], cache_keys: set[str], previous: bool, top_k: float
) -> None:
    attributes = span_attributes(responses_record(), SpanAttributeKeys(generations))
    assert {key for key in attributes if key.endswith("cache_creation.input_tokens")
            or key.endswith("cache_write.input_tokens")} == cache_keys  # fmt: skip
    for key in cache_keys:
        assert attributes[key] == 3
    assert (attributes.get(PREVIOUS) == "resp_abc") is previous
    assert PREVIOUS in attributes or not previous
    assert attributes["gen_ai.request.top_k"] == top_k
    assert type(attributes["gen_ai.request.top_k"]) is type(top_k)
    # The same in every generation.
    assert {
        key: attributes[key]
        for key in (
            "gen_ai.request.stream",
            "gen_ai.output.type",
            "gen_ai.conversation.id",
            "gen_ai.request.stop_sequences",
            "openai.api.type",
            "openai.request.service_tier",
            "openai.response.service_tier",
            "openai.response.system_fingerprint",
        )
    } == {
        "gen_ai.request.stream": True,
        "gen_ai.output.type": "json",
        "gen_ai.conversation.id": "conv_123",
        "gen_ai.request.stop_sequences": ("END",),
        "openai.api.type": "responses",
        "openai.request.service_tier": "flex",
        "openai.response.service_tier": "flex",
        "openai.response.system_fingerprint": "fp_44709d6fcb",
    }


def test_left_out_when_not_known_or_not_openai() -> None:
    record = responses_record()
    record.request.stream = False
    record.request.service_tier = "auto"  # v1.41: only when not `auto`
    attributes = span_attributes(record)
    assert "gen_ai.request.stream" not in attributes
    assert "openai.request.service_tier" not in attributes
    record.provider_name = "anthropic"
    attributes = span_attributes(record)
    assert not any(key.startswith("openai.") for key in attributes)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = start_receiver("grpc")
    yield running
    running.stop()


def by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {span.name: span for span in spans}


@pytest.mark.parametrize("mode", ["v1.41", "latest", "dup"])
async def test_sdk_calls_carry_the_new_attributes(
    mode: str, receiver: OtlpReceiver, sidecar_factory: SidecarFactory
) -> None:
    sidecar = await sidecar_factory(environ=mode_environ(mode, **receiver.environ()))
    oai = openai.AsyncOpenAI(base_url=f"{sidecar.proxy_url}/v1", api_key=API_KEY, max_retries=0)
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Reply in JSON."}],
        response_format={"type": "json_object"},
        frequency_penalty=0.5,
        stop=["\n\n"],
        service_tier="default",
        stream=True,
    )
    async for _chunk in stream:
        pass
    await oai.responses.create(
        model="gpt-4.1",
        input="And now?",
        previous_response_id="resp_earlier",
        text={"format": {"type": "text"}},
    )
    await oai.embeddings.create(
        model="text-embedding-3-small", input="hello", dimensions=256, encoding_format="float"
    )
    claude = anthropic.AsyncAnthropic(base_url=sidecar.proxy_url, api_key=API_KEY, max_retries=0)
    await claude.messages.create(
        model="claude-sonnet-4",
        max_tokens=32,
        stop_sequences=["###"],
        extra_body={"top_k": 5},
        messages=[{"role": "user", "content": "Hi"}],
    )
    await oai.close()
    await claude.close()

    spans = by_name(await receiver.wait_for_spans(4))
    chat = spans["chat gpt-4o-mini"].attributes
    assert chat["gen_ai.request.stream"] is True
    assert chat["gen_ai.output.type"] == "json"
    assert chat["gen_ai.request.frequency_penalty"] == 0.5
    assert chat["gen_ai.request.stop_sequences"] == ["\n\n"]
    assert chat["openai.api.type"] == "chat_completions"
    assert chat["openai.request.service_tier"] == "default"
    assert chat["openai.response.service_tier"] == "default"
    assert chat["openai.response.system_fingerprint"].startswith("fp_")

    responses = spans["chat gpt-4.1"].attributes
    assert "gen_ai.request.stream" not in responses
    assert responses["gen_ai.output.type"] == "text"
    assert responses["openai.api.type"] == "responses"
    assert responses["openai.response.service_tier"] == "default"
    assert responses.get(PREVIOUS) == (None if mode == "v1.41" else "resp_earlier")

    embeddings = spans["embeddings text-embedding-3-small"].attributes
    assert embeddings["gen_ai.embeddings.dimension.count"] == 256
    assert embeddings["gen_ai.request.encoding_formats"] == ["float"]

    messages = spans["chat claude-sonnet-4"].attributes
    assert messages["gen_ai.request.top_k"] == (5.0 if mode == "v1.41" else 5)
    assert messages["gen_ai.request.stop_sequences"] == ["###"]
    assert not any(key.startswith("openai.") for key in messages)
    # Anthropic always reports cache creation (the simulator too): under each generation's key.
    cache_keys = {key for key in messages if key.startswith("gen_ai.usage.cache_")}
    cache_keys.discard("gen_ai.usage.cache_read.input_tokens")
    assert (
        cache_keys
        == {
            "v1.41": {V1_41_CACHE},
            "latest": {GENAI_CACHE},
            "dup": {V1_41_CACHE, GENAI_CACHE},
        }[mode]
    )
