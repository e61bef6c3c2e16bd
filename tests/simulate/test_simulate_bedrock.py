"""boto3's bedrock-runtime client (and Anthropic's Bedrock client) accept the simulated
Bedrock: Converse, ConverseStream, InvokeModel for three model families, response streams,
errors and faults, with exact token counts."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import aiohttp
import orjson
import pytest
from anthropic import AsyncAnthropicBedrock
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError

from sidecar.protocols.eventstream import EventStreamDecoder
from sidecar.simulate import ModelProfile, RunningSimulator, Simulator
from sidecar.simulate.sigv4 import SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY
from sidecar.simulate.text import count_tokens
from tests.helpers.bedrock import bedrock_client, in_thread, model_path, signed_post

SONNET = "us.anthropic.claude-sonnet-4-20250514-v1:0"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"  # no profile: the fallback one
LLAMA = "meta.llama3-1-8b-instruct-v1:0"
NOVA = "us.amazon.nova-lite-v1:0"
SLOW = "anthropic.claude-3-haiku-20240307-v1:0"
PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/" + LLAMA
APPLICATION_ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
)
PROFILES = {
    SONNET: ModelProfile(
        name=SONNET,
        response_model="claude-sonnet-4-20250514",
        ttft_s=0.0,
        tokens_per_second=0.0,
        output_tokens=30,
        cache_read_share=0.5,
        cache_write_share=0.25,
    ),
    # Llama has no prompt cache on Bedrock: its cache share must not show.
    LLAMA: ModelProfile(
        name=LLAMA, ttft_s=0.0, tokens_per_second=0.0, output_tokens=20, cache_read_share=0.5
    ),
    NOVA: ModelProfile(
        name=NOVA,
        ttft_s=0.0,
        tokens_per_second=0.0,
        output_tokens=18,
        tokens_per_chunk=4,
        cache_read_share=0.25,
    ),
    SLOW: ModelProfile(name=SLOW, ttft_s=0.15, tokens_per_second=100.0, output_tokens=5),
}
SYSTEM = "You are terse."
PROMPT = "Explain the sidecar pattern in two sentences, please. " * 8
CONVERSE_MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]
TOTAL_INPUT = count_tokens(SYSTEM) + count_tokens(PROMPT)


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(PROFILES.values(), seed=7)


@pytest.fixture
def client(sim: RunningSimulator) -> Any:
    return bedrock_client(sim.base_url)


def cache_split(model: str, total: int) -> tuple[int, int, int]:
    """(uncached input, cache reads, cache writes) of `total` input tokens under `model`."""
    profile = PROFILES[model]
    read = int(total * profile.cache_read_share)
    write = int(total * profile.cache_write_share)
    return total - read - write, read, write


def anthropic_body(**extra: Any) -> bytes:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 1000,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": PROMPT}],
        **extra,
    }
    return json.dumps(body).encode()


LLAMA_BODY = json.dumps({"prompt": PROMPT, "max_gen_len": 7, "temperature": 0.1}).encode()
NOVA_BODY = json.dumps(
    {
        "schemaVersion": "messages-v1",
        "system": [{"text": SYSTEM}],
        "messages": CONVERSE_MESSAGES,
        "inferenceConfig": {"max_new_tokens": 1000},
    }
).encode()


# Converse ------------------------------------------------------------------------------------


async def test_converse_usage_and_shape(client: Any, sim: RunningSimulator) -> None:
    response = await in_thread(
        lambda: client.converse(
            modelId=SONNET, system=[{"text": SYSTEM}], messages=CONVERSE_MESSAGES
        )
    )
    uncached, read, write = cache_split(SONNET, TOTAL_INPUT)
    assert response["usage"] == {
        "inputTokens": uncached,
        "outputTokens": 30,
        "totalTokens": TOTAL_INPUT + 30,
        "cacheReadInputTokens": read,
        "cacheWriteInputTokens": write,
    }
    assert read > 0 and write > 0 and uncached > 0
    assert response["stopReason"] == "end_turn"
    assert response["metrics"] == {"latencyMs": 0}
    message = response["output"]["message"]
    assert message["role"] == "assistant"
    assert len(message["content"][0]["text"].split()) == 30
    assert len(response["ResponseMetadata"]["RequestId"]) == 36
    # boto3 sends the model id URL-encoded.
    received = sim.simulator.received[-1]
    assert received.path_qs == "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse"


async def test_converse_raw_body_members(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    """Exactly Converse's members (botocore would hide unknown ones)."""
    body = json.dumps({"messages": CONVERSE_MESSAGES}).encode()
    async with await signed_post(http, sim.base_url, model_path(SONNET, "converse"), body) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "application/json"
        data = await reply.json()
    assert set(data) == {"output", "stopReason", "usage", "metrics"}


async def test_converse_max_tokens(client: Any) -> None:
    response = await in_thread(
        lambda: client.converse(
            modelId=SONNET, messages=CONVERSE_MESSAGES, inferenceConfig={"maxTokens": 3}
        )
    )
    assert response["stopReason"] == "max_tokens"
    assert response["usage"]["outputTokens"] == 3


async def test_converse_stream_events(client: Any) -> None:
    def both() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        whole = client.converse(modelId=SONNET, messages=CONVERSE_MESSAGES)
        streamed = client.converse_stream(modelId=SONNET, messages=CONVERSE_MESSAGES)
        return whole, list(streamed["stream"])

    whole, events = await in_thread(both)
    names = [next(iter(event)) for event in events]
    assert names == [
        "messageStart",
        *["contentBlockDelta"] * 30,
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert events[0]["messageStart"] == {"role": "assistant"}
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events[1:31])
    assert text == whole["output"]["message"]["content"][0]["text"]
    assert events[-2]["messageStop"] == {"stopReason": "end_turn"}
    assert events[-1]["metadata"]["usage"] == whole["usage"]
    assert events[-1]["metadata"]["metrics"] == {"latencyMs": 0}


async def test_converse_stream_frames(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    body = json.dumps({"messages": CONVERSE_MESSAGES}).encode()
    path = model_path(NOVA, "converse-stream")
    async with await signed_post(http, sim.base_url, path, body) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "application/vnd.amazon.eventstream"
        assert reply.headers["x-amzn-RequestId"]
        raw = await reply.read()
    # Our decoder, fed in random pieces, reads what botocore reads.
    rng = random.Random(3)
    decoder = EventStreamDecoder()
    messages = []
    start = 0
    while start < len(raw):
        step = rng.randint(1, 64)
        messages += decoder.feed(raw[start : start + step])
        start += step
    assert not decoder.pending
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    assert [(dict(m.headers), m.payload) for m in messages] == [
        (m.headers, m.payload) for m in buffer
    ]
    kinds = [m.event_type for m in messages]
    assert kinds == [
        "messageStart",
        *["contentBlockDelta"] * 5,
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    for message in messages:
        assert dict(message.headers) == {
            ":event-type": message.event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        }
        # Bedrock pads every event; clients must ignore the padding.
        assert isinstance(orjson.loads(message.payload)["p"], str)


# InvokeModel -----------------------------------------------------------------------------------


def invoke(client: Any, model: str, body: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    response = client.invoke_model(modelId=model, body=body)
    assert response["contentType"] == "application/json"
    return json.loads(response["body"].read()), response["ResponseMetadata"]["HTTPHeaders"]


def invoke_stream(client: Any, model: str, body: bytes) -> tuple[list[dict[str, Any]], dict]:
    response = client.invoke_model_with_response_stream(modelId=model, body=body)
    events = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    return events, response["ResponseMetadata"]["HTTPHeaders"]


def token_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name.startswith("x-amzn-bedrock-") and name.endswith("count")
    }


async def test_invoke_anthropic(client: Any) -> None:
    body, headers = await in_thread(lambda: invoke(client, SONNET, anthropic_body()))
    uncached, read, write = cache_split(SONNET, TOTAL_INPUT)
    assert body["id"].startswith("msg_bdrk_01")
    assert body["type"] == "message"
    assert body["model"] == "claude-sonnet-4-20250514"
    assert body["stop_reason"] == "end_turn"
    assert len(body["content"][0]["text"].split()) == 30
    usage = body["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (uncached, read)
    assert (usage["cache_creation_input_tokens"], usage["output_tokens"]) == (write, 30)
    assert token_headers(headers) == {
        "x-amzn-bedrock-input-token-count": str(uncached),
        "x-amzn-bedrock-output-token-count": "30",
        "x-amzn-bedrock-cache-read-input-token-count": str(read),
        "x-amzn-bedrock-cache-write-input-token-count": str(write),
    }
    assert headers["x-amzn-bedrock-invocation-latency"] == "0"


async def test_invoke_anthropic_names_the_model_without_a_profile(client: Any) -> None:
    body, headers = await in_thread(lambda: invoke(client, HAIKU, anthropic_body()))
    assert body["model"] == "claude-3-5-haiku-20241022"
    # The fallback profile caches nothing: no cache headers at all.
    assert set(token_headers(headers)) == {
        "x-amzn-bedrock-input-token-count",
        "x-amzn-bedrock-output-token-count",
    }


async def test_invoke_llama(client: Any) -> None:
    body, headers = await in_thread(lambda: invoke(client, LLAMA, LLAMA_BODY))
    assert len(body["generation"].split()) == 7
    assert body == {
        "generation": body["generation"],
        "prompt_token_count": count_tokens(PROMPT),
        "generation_token_count": 7,
        "stop_reason": "length",
    }
    assert token_headers(headers) == {
        "x-amzn-bedrock-input-token-count": str(count_tokens(PROMPT)),
        "x-amzn-bedrock-output-token-count": "7",
    }


async def test_invoke_nova(client: Any) -> None:
    body, headers = await in_thread(lambda: invoke(client, NOVA, NOVA_BODY))
    uncached, read, write = cache_split(NOVA, TOTAL_INPUT)
    assert body["output"]["message"]["role"] == "assistant"
    assert len(body["output"]["message"]["content"][0]["text"].split()) == 18
    assert body["stopReason"] == "end_turn"
    assert body["usage"] == {
        "inputTokens": uncached,
        "outputTokens": 18,
        "totalTokens": TOTAL_INPUT + 18,
        "cacheReadInputTokenCount": read,
        "cacheWriteInputTokenCount": write,
    }
    assert headers["x-amzn-bedrock-input-token-count"] == str(uncached)


async def test_invoke_stream_anthropic(client: Any) -> None:
    def both() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
        whole, _ = invoke(client, SONNET, anthropic_body())
        events, headers = invoke_stream(client, SONNET, anthropic_body())
        return whole, events, headers

    whole, events, headers = await in_thread(both)
    assert headers["content-type"] == "application/vnd.amazon.eventstream"
    assert headers["x-amzn-bedrock-content-type"] == "application/json"
    types = [event["type"] for event in events]
    assert types == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 30,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == whole["content"][0]["text"]
    start_usage = events[0]["message"]["usage"]
    assert start_usage["input_tokens"] == whole["usage"]["input_tokens"]
    assert events[-2]["usage"] == {"output_tokens": 30}
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    uncached, read, write = cache_split(SONNET, TOTAL_INPUT)
    assert events[-1]["amazon-bedrock-invocationMetrics"] == {
        "inputTokenCount": uncached,
        "outputTokenCount": 30,
        "invocationLatency": 0,
        "firstByteLatency": 0,
        "cacheReadInputTokenCount": read,
        "cacheWriteInputTokenCount": write,
    }
    # Only the last event carries the metrics.
    assert sum("amazon-bedrock-invocationMetrics" in e for e in events) == 1


async def test_invoke_stream_llama(client: Any) -> None:
    def both() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return invoke(client, LLAMA, LLAMA_BODY)[0], invoke_stream(client, LLAMA, LLAMA_BODY)[0]

    whole, events = await in_thread(both)
    assert "".join(e["generation"] for e in events) == whole["generation"]
    assert events[0]["prompt_token_count"] == count_tokens(PROMPT)
    assert all(e["prompt_token_count"] is None for e in events[1:])
    assert [e["generation_token_count"] for e in events] == [1, 2, 3, 4, 5, 6, 7, 7]
    assert [e["stop_reason"] for e in events] == [None] * 7 + ["length"]
    assert events[-1]["amazon-bedrock-invocationMetrics"] == {
        "inputTokenCount": count_tokens(PROMPT),
        "outputTokenCount": 7,
        "invocationLatency": 0,
        "firstByteLatency": 0,
    }


async def test_invoke_stream_nova(client: Any) -> None:
    def both() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return invoke(client, NOVA, NOVA_BODY)[0], invoke_stream(client, NOVA, NOVA_BODY)[0]

    whole, events = await in_thread(both)
    names = [next(key for key in e if key != "amazon-bedrock-invocationMetrics") for e in events]
    # 18 tokens, 4 a chunk: 5 deltas.
    assert names == [
        "messageStart",
        *["contentBlockDelta"] * 5,
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events[1:6])
    assert text == whole["output"]["message"]["content"][0]["text"]
    assert events[-1]["metadata"]["usage"] == whole["usage"]
    metrics = events[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] == whole["usage"]["inputTokens"]
    assert metrics["cacheReadInputTokenCount"] == whole["usage"]["cacheReadInputTokenCount"]


async def test_anthropic_bedrock_sdk(sim: RunningSimulator) -> None:
    """Anthropic's own Bedrock client signs differently (`:` left unencoded in the path) and
    parses replies with its own models and stream decoder."""
    client = AsyncAnthropicBedrock(
        aws_access_key=SIMULATOR_ACCESS_KEY,
        aws_secret_key=SIMULATOR_SECRET_KEY,
        aws_region="us-east-1",
        base_url=sim.base_url,
        max_retries=0,
    )
    messages = [{"role": "user", "content": PROMPT}]
    message = await client.messages.create(
        model=SONNET, max_tokens=1000, system=SYSTEM, messages=messages
    )
    uncached, read, _ = cache_split(SONNET, TOTAL_INPUT)
    assert message.model == "claude-sonnet-4-20250514"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (uncached, 30)
    assert message.usage.cache_read_input_tokens == read
    assert sim.simulator.received[-1].path_qs == f"/model/{SONNET}/invoke"
    async with client.messages.stream(
        model=SONNET, max_tokens=1000, system=SYSTEM, messages=messages
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == message.content[0].text
    assert final.usage.output_tokens == 30
    await client.close()


# Model ids ------------------------------------------------------------------------------------


async def test_model_ids_arrive_url_encoded(client: Any, simulator: Simulator) -> None:
    body, _ = await in_thread(lambda: invoke(client, PROFILE_ARN, LLAMA_BODY))
    assert "generation" in body  # the family comes from the id inside the ARN
    path = simulator.received[-1].path_qs
    assert "inference-profile%2Fmeta.llama3-1-8b-instruct-v1%3A0" in path
    # An application inference profile does not name its model: the body decides.
    body, _ = await in_thread(lambda: invoke(client, APPLICATION_ARN, NOVA_BODY))
    assert "output" in body
    # Faults match the decoded id.
    simulator.fail_next(status=429, model=PROFILE_ARN)
    with pytest.raises(ClientError) as refused:
        await in_thread(lambda: invoke(client, PROFILE_ARN, LLAMA_BODY))
    assert refused.value.response["Error"]["Code"] == "ThrottlingException"


# Errors and faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (404, "ResourceNotFoundException"),
        (408, "ModelTimeoutException"),
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailableException"),
    ],
)
async def test_errors_in_bedrock_shape(
    client: Any, sim: RunningSimulator, http: aiohttp.ClientSession, status: int, code: str
) -> None:
    simulator = sim.simulator
    simulator.fail_next(status=status, model=SONNET)
    with pytest.raises(ClientError) as refused:
        await in_thread(lambda: client.converse(modelId=SONNET, messages=CONVERSE_MESSAGES))
    error = refused.value.response
    assert error["Error"]["Code"] == code
    assert error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    # On the wire: the code in x-amzn-ErrorType, the body only {"message": ...}.
    simulator.fail_next(status=status, model=SONNET)
    body = json.dumps({"messages": CONVERSE_MESSAGES}).encode()
    path = model_path(SONNET, "converse-stream")
    async with await signed_post(http, sim.base_url, path, body) as reply:
        assert reply.status == status
        assert reply.headers["x-amzn-ErrorType"].startswith(code + ":http://")
        assert reply.headers["x-amzn-RequestId"]
        assert list(await reply.json()) == ["message"]


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (SONNET, anthropic_body(anthropic_version=20230531), "expected type: String"),
        (SONNET, anthropic_body(model=SONNET), "extraneous key [model] is not permitted"),
        (
            SONNET,
            json.dumps({"max_tokens": 5, "messages": []}).encode(),
            "required key [anthropic_version] not found",
        ),
        (LLAMA, json.dumps({"max_gen_len": 5}).encode(), "required key [prompt] not found"),
        (NOVA, json.dumps({"inferenceConfig": {}}).encode(), "required key [messages]"),
        ("cohere.command-r-v1:0", b'{"message": "hi"}', "model identifier is invalid"),
    ],
)
async def test_models_refuse_malformed_bodies(
    client: Any, model: str, body: bytes, message: str
) -> None:
    with pytest.raises(ClientError) as refused:
        await in_thread(lambda: invoke(client, model, body))
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert message in error["Message"]


async def test_converse_without_messages(client: Any) -> None:
    with pytest.raises(ClientError) as refused:
        await in_thread(lambda: client.converse(modelId=SONNET))
    assert refused.value.response["Error"]["Code"] == "ValidationException"


async def test_body_that_is_not_json(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    async with await signed_post(http, sim.base_url, model_path(SONNET, "invoke"), b"{no") as reply:
        assert reply.status == 400
        assert reply.headers["x-amzn-ErrorType"].startswith("ValidationException:")
        assert "Malformed input request" in (await reply.json())["message"]


async def test_dropped_stream(client: Any, simulator: Simulator) -> None:
    simulator.drop_next(after_chunks=3, model=SONNET)
    seen: list[dict[str, Any]] = []

    def read() -> None:
        response = client.converse_stream(modelId=SONNET, messages=CONVERSE_MESSAGES)
        seen.extend(response["stream"])

    with pytest.raises(Exception) as broken:
        await in_thread(read)
    assert not isinstance(broken.value, ClientError)
    assert [next(iter(e)) for e in seen] == ["messageStart", *["contentBlockDelta"] * 3]


@pytest.mark.parametrize("mid_frame", [False, True])
async def test_dropped_stream_cuts_between_or_inside_frames(
    http: aiohttp.ClientSession, sim: RunningSimulator, mid_frame: bool
) -> None:
    sim.simulator.drop_next(after_chunks=2, model=LLAMA)
    extra = {"x-sim-drop-mid-frame": "1"} if mid_frame else {}
    path = model_path(LLAMA, "invoke-with-response-stream")
    decoder = EventStreamDecoder()
    events = []
    async with await signed_post(http, sim.base_url, path, LLAMA_BODY, headers=extra) as reply:
        assert reply.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for piece in reply.content.iter_any():
                events += decoder.feed(piece)
    assert [m.event_type for m in events] == ["chunk", "chunk"]
    assert decoder.pending is mid_frame


async def test_latency_profile(client: Any) -> None:
    started = time.monotonic()
    response = await in_thread(lambda: client.converse(modelId=SLOW, messages=CONVERSE_MESSAGES))
    elapsed = time.monotonic() - started
    # 150 ms to the first token, then 4 more tokens at 100 tokens/s.
    assert response["metrics"] == {"latencyMs": 190}
    assert elapsed >= 0.18
    _, headers = await in_thread(lambda: invoke(client, SLOW, anthropic_body()))
    assert headers["x-amzn-bedrock-invocation-latency"] == "190"
    events, _ = await in_thread(lambda: invoke_stream(client, SLOW, anthropic_body()))
    metrics = events[-1]["amazon-bedrock-invocationMetrics"]
    assert (metrics["firstByteLatency"], metrics["invocationLatency"]) == (150, 190)
