"""boto3's bedrock-runtime client through a real sidecar to the simulated Bedrock: the app changes
only its endpoint URL, gets what it would get directly, and the sidecar re-signs every call with
the pod's credentials (the app's own are refused by the simulator)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError
from genai_prices import Usage, calc_price
from yarl import URL

from sidecar.app import Sidecar
from sidecar.record import CallRecord
from tests.helpers.aws import POD_ACCESS_KEY, POD_SESSION_TOKEN
from tests.helpers.bedrock import (
    APP_ACCESS_KEY,
    APP_SECRET_KEY,
    REGION,
    SONNET,
    SONNET_PROFILE,
    SONNET_RESPONSE_MODEL,
    app_client,
    bedrock_client,
    in_thread,
    model_path,
    signed_post,
)
from tests.helpers.logs import captured_logs
from tests.helpers.records import RecordingSink
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

SYSTEM = [{"text": "You are terse."}]
MESSAGES = [{"role": "user", "content": [{"text": "Explain the sidecar pattern, briefly. " * 6}]}]
ANTHROPIC_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 200,
        "temperature": 0.3,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Explain the sidecar pattern, briefly. " * 6}],
    }
)
CONVERSE_BODY = json.dumps({"system": SYSTEM, "messages": MESSAGES}).encode()


def without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    """A boto3 response without its HTTP metadata (the sidecar adds a request id header)."""
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def converse(client: Any) -> dict[str, Any]:
    reply = client.converse(
        modelId=SONNET, system=SYSTEM, messages=MESSAGES, inferenceConfig={"maxTokens": 200}
    )
    return dict(reply)


def converse_stream(client: Any) -> list[dict[str, Any]]:
    reply = client.converse_stream(
        modelId=SONNET, system=SYSTEM, messages=MESSAGES, inferenceConfig={"maxTokens": 200}
    )
    return list(reply["stream"])


def invoke(client: Any) -> tuple[dict[str, Any], str]:
    reply = client.invoke_model(modelId=SONNET, body=ANTHROPIC_BODY)
    return json.loads(reply["body"].read()), reply["contentType"]


def invoke_stream(client: Any) -> list[dict[str, Any]]:
    reply = client.invoke_model_with_response_stream(modelId=SONNET, body=ANTHROPIC_BODY)
    return [json.loads(event["chunk"]["bytes"]) for event in reply["body"]]


def signing_key(simulator: RunningSimulator) -> str:
    """The access key of the last request the simulator received."""
    authorization = simulator.sim.received[-1].headers["Authorization"]
    return authorization.split("Credential=")[1].split("/")[0]


def expected_cost(uncached: int, cache_read: int, cache_write: int, output: int) -> float:
    usage = Usage(
        input_tokens=uncached + cache_read + cache_write,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=output,
    )
    return float(calc_price(usage, SONNET, provider_id="aws").total_price)


def assert_measured(
    record: CallRecord, uncached: int, cache_read: int, cache_write: int, output: int
) -> None:
    assert record.outcome == "ok" and record.http_status == 200
    assert (record.provider_name, record.upstream, record.protocol) == (
        "aws.bedrock",
        "bedrock",
        "bedrock",
    )
    assert (record.request.operation, record.request.request_model) == ("chat", SONNET)
    assert record.request.max_tokens == 200
    assert record.input_tokens == uncached + cache_read + cache_write
    assert (record.output_tokens, record.cache_read_tokens) == (output, cache_read)
    assert record.cache_creation_tokens == cache_write
    assert record.finish_reasons == ["end_turn"]
    assert record.cost_usd == pytest.approx(
        expected_cost(uncached, cache_read, cache_write, output)
    )
    assert record.cost_usd > 0


def assert_streamed(record: CallRecord, chunks: int) -> None:
    """A stream's time to first chunk is the model's, at its first content delta."""
    ttfc = record.time_to_first_chunk
    assert ttfc is not None and SONNET_PROFILE.ttft_s <= ttfc < SONNET_PROFILE.ttft_s + 1.0
    assert len(record.chunk_times) == chunks


# The four operations ---------------------------------------------------------------------------


async def test_converse(
    bedrock_sidecar: Sidecar, simulator: RunningSimulator, records: RecordingSink
) -> None:
    through = await in_thread(lambda: converse(app_client(bedrock_sidecar.proxy_url)))
    assert signing_key(simulator) == POD_ACCESS_KEY
    direct = await in_thread(lambda: converse(bedrock_client(simulator.url)))
    assert without_metadata(through) == without_metadata(direct)

    (record,) = await records.wait_for(1)
    usage = through["usage"]
    assert_measured(
        record,
        usage["inputTokens"],
        usage["cacheReadInputTokens"],
        usage["cacheWriteInputTokens"],
        usage["outputTokens"],
    )
    assert usage["cacheReadInputTokens"] > 0 and usage["cacheWriteInputTokens"] > 0
    assert record.provider_latency_s == through["metrics"]["latencyMs"] / 1000
    assert record.time_to_first_chunk is None


async def test_converse_stream(
    bedrock_sidecar: Sidecar, simulator: RunningSimulator, records: RecordingSink
) -> None:
    through = await in_thread(lambda: converse_stream(app_client(bedrock_sidecar.proxy_url)))
    assert signing_key(simulator) == POD_ACCESS_KEY
    direct = await in_thread(lambda: converse_stream(bedrock_client(simulator.url)))
    assert through == direct
    kinds = [next(iter(event)) for event in through]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]

    (record,) = await records.wait_for(1)
    usage = through[-1]["metadata"]["usage"]
    assert_measured(
        record,
        usage["inputTokens"],
        usage["cacheReadInputTokens"],
        usage["cacheWriteInputTokens"],
        usage["outputTokens"],
    )
    assert record.request.stream
    assert_streamed(record, kinds.count("contentBlockDelta"))


async def test_invoke_model_anthropic(
    bedrock_sidecar: Sidecar, simulator: RunningSimulator, records: RecordingSink
) -> None:
    through, content_type = await in_thread(lambda: invoke(app_client(bedrock_sidecar.proxy_url)))
    assert signing_key(simulator) == POD_ACCESS_KEY
    assert (through, content_type) == await in_thread(lambda: invoke(bedrock_client(simulator.url)))

    (record,) = await records.wait_for(1)
    usage = through["usage"]
    assert_measured(
        record,
        usage["input_tokens"],
        usage["cache_read_input_tokens"],
        usage["cache_creation_input_tokens"],
        usage["output_tokens"],
    )
    assert (record.response_model, record.response_id) == (SONNET_RESPONSE_MODEL, through["id"])
    assert record.request.temperature == 0.3


async def test_invoke_model_with_response_stream(
    bedrock_sidecar: Sidecar, simulator: RunningSimulator, records: RecordingSink
) -> None:
    through = await in_thread(lambda: invoke_stream(app_client(bedrock_sidecar.proxy_url)))
    assert signing_key(simulator) == POD_ACCESS_KEY
    assert through == await in_thread(lambda: invoke_stream(bedrock_client(simulator.url)))

    (record,) = await records.wait_for(1)
    start = through[0]["message"]["usage"]
    final = through[-1]["amazon-bedrock-invocationMetrics"]
    assert_measured(
        record,
        start["input_tokens"],
        start["cache_read_input_tokens"],
        start["cache_creation_input_tokens"],
        final["outputTokenCount"],
    )
    assert record.response_model == SONNET_RESPONSE_MODEL
    deltas = [event for event in through if event["type"] == "content_block_delta"]
    assert_streamed(record, len(deltas))


@pytest.mark.parametrize("operation", ["converse-stream", "invoke-with-response-stream"])
async def test_stream_bytes_are_the_providers(
    bedrock_sidecar: Sidecar, simulator: RunningSimulator, operation: str
) -> None:
    body = CONVERSE_BODY if operation == "converse-stream" else ANTHROPIC_BODY.encode()
    path = model_path(SONNET, operation)
    app_keys = {"access_key": APP_ACCESS_KEY, "secret_key": APP_SECRET_KEY}
    async with aiohttp.ClientSession() as http:
        async with await signed_post(http, bedrock_sidecar.proxy_url, path, body, **app_keys) as r:
            through = (r.status, r.headers["Content-Type"], await r.read())
        async with await signed_post(http, simulator.url, path, body) as reply:
            direct = (reply.status, reply.headers["Content-Type"], await reply.read())
    assert through == direct
    assert through[1] == "application/vnd.amazon.eventstream"


# The signature ---------------------------------------------------------------------------------


async def test_the_simulator_accepts_the_sidecars_signature_and_rejects_it_tampered(
    bedrock_sidecar: Sidecar, simulator: RunningSimulator
) -> None:
    await in_thread(lambda: converse(app_client(bedrock_sidecar.proxy_url)))
    sent = simulator.sim.received[-1]
    authorization = sent.headers["Authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={POD_ACCESS_KEY}/")
    assert f"/{REGION}/bedrock/aws4_request" in authorization
    assert sent.headers["X-Amz-Security-Token"] == POD_SESSION_TOKEN
    assert "X-Amz-Content-Sha256" not in sent.headers

    # The request as the sidecar sent it, sent again: accepted; with one byte changed: refused.
    headers = {
        name: value
        for name, value in sent.headers.items()
        if name.lower() not in ("host", "content-length", "transfer-encoding")
    }
    tampered = sent.body.replace(b"briefly", b"Briefly", 1)
    assert tampered != sent.body
    url = URL(simulator.url + sent.path_qs, encoded=True)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=sent.body, headers=headers) as reply:
            assert reply.status == 200
        async with http.post(url, data=tampered, headers=headers) as reply:
            assert reply.status == 403
            assert reply.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")


async def test_the_apps_own_credentials_are_refused_by_the_simulator(
    simulator: RunningSimulator,
) -> None:
    with pytest.raises(ClientError) as refused:
        await in_thread(lambda: converse(app_client(simulator.url)))
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"


async def test_without_pod_credentials_the_request_goes_as_it_came_and_one_line_says_why(
    sidecar_factory: SidecarFactory,
    bedrock_upstream: dict[str, object],
    simulator: RunningSimulator,
    records: RecordingSink,
) -> None:
    with captured_logs("sidecar") as logs:
        sidecar = await sidecar_factory(bedrock_upstream)
        client = app_client(sidecar.proxy_url)
        for _ in range(2):
            with pytest.raises(ClientError) as refused:
                await in_thread(lambda: converse(client))
            assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
            assert signing_key(simulator) == APP_ACCESS_KEY  # the app's signature, unchanged
    (line,) = logs.containing("no AWS credentials found")
    assert "upstream 'bedrock'" in line and '"level":"warning"' in line
    records_seen = await records.wait_for(2)
    assert [r.outcome for r in records_seen] == ["upstream_error", "upstream_error"]
    assert {r.provider_name for r in records_seen} == {"aws.bedrock"}


async def test_a_bedrock_api_key_is_forwarded_unchanged(
    bedrock_sidecar: Sidecar, simulator: RunningSimulator
) -> None:
    simulator.sim.aws.accept_api_key("bedrock-api-key-for-tests")
    headers = {
        "Authorization": "Bearer bedrock-api-key-for-tests",
        "Content-Type": "application/json",
    }
    url = URL(bedrock_sidecar.proxy_url + model_path(SONNET, "converse"), encoded=True)
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=CONVERSE_BODY, headers=headers) as r,
    ):
        assert r.status == 200
    assert simulator.sim.received[-1].headers["Authorization"] == headers["Authorization"]
    assert "X-Amz-Date" not in simulator.sim.received[-1].headers


# Streams cut short -----------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["converse_stream", "invoke_stream"])
async def test_a_stream_cut_mid_frame_is_aborted_and_recorded_as_interrupted(
    bedrock_sidecar: Sidecar,
    simulator: RunningSimulator,
    records: RecordingSink,
    operation: str,
) -> None:
    simulator.sim.drop_next(after_chunks=3, model=SONNET)
    client = app_client(bedrock_sidecar.proxy_url)

    def cut_inside_a_frame(request: Any, **_: Any) -> None:
        request.headers["x-sim-drop-mid-frame"] = "1"

    client.meta.events.register("before-sign.bedrock-runtime.*", cut_inside_a_frame)
    seen: list[dict[str, Any]] = []

    def read() -> None:
        if operation == "converse_stream":
            reply = client.converse_stream(modelId=SONNET, messages=MESSAGES)
            seen.extend(reply["stream"])
        else:
            reply = client.invoke_model_with_response_stream(modelId=SONNET, body=ANTHROPIC_BODY)
            seen.extend(reply["body"])

    with pytest.raises(Exception) as broken:
        await in_thread(read)
    assert not isinstance(broken.value, ClientError)  # an aborted stream, not an error reply
    assert 0 < len(seen) < 8

    (record,) = await records.wait_for(1)
    assert record.outcome == "stream_interrupted"
    assert record.error_type == "stream_interrupted"
    assert record.finish_reasons == [] and record.first_chunk is not None
