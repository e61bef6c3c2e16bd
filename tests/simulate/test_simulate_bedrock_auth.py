"""The simulated Bedrock verifies SigV4 signatures as AWS does: known keys only, the signature
recomputed over what was received, temporary credentials with their token and expiry."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError
from yarl import URL

from sidecar.simulate import RunningSimulator, Simulator, start_simulator
from sidecar.simulate.sigv4 import SIMULATOR_ACCESS_KEY, AwsAuth, AwsCredential
from tests.helpers.bedrock import (
    bedrock_client,
    in_thread,
    model_path,
    signed_headers,
    signed_post,
)

MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Hello there."}]}]
BODY = json.dumps({"messages": MESSAGES}).encode()
PATH = model_path(MODEL, "converse")


def converse(client: Any) -> dict[str, Any]:
    return dict(client.converse(modelId=MODEL, messages=MESSAGES))


async def refusal(client: Any) -> tuple[int, str, str]:
    """(status, error code, message) of a call that must be refused."""
    with pytest.raises(ClientError) as refused:
        await in_thread(lambda: converse(client))
    response = refused.value.response
    code, message = response["Error"]["Code"], response["Error"]["Message"]
    return response["ResponseMetadata"]["HTTPStatusCode"], code, message


async def test_the_default_credentials_are_accepted(sim: RunningSimulator) -> None:
    reply = await in_thread(lambda: converse(bedrock_client(sim.base_url)))
    assert reply["stopReason"] == "end_turn"
    assert sim.simulator.aws.credentials == (
        AwsCredential(SIMULATOR_ACCESS_KEY, sim.simulator.aws.credentials[0].secret_key),
    )


async def test_a_wrong_secret_is_refused(sim: RunningSimulator) -> None:
    client = bedrock_client(sim.base_url, secret_key="not-the-secret")
    status, code, message = await refusal(client)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("The request signature we calculated does not match")
    # The refused request is still on record, as it arrived.
    received = sim.simulator.received[-1]
    assert received.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")


async def test_an_unknown_access_key_is_refused(sim: RunningSimulator) -> None:
    client = bedrock_client(sim.base_url, access_key="AKIDUNKNOWN")
    status, code, message = await refusal(client)
    assert (status, code) == (403, "UnrecognizedClientException")
    assert message == "The security token included in the request is invalid."


async def test_keys_can_be_accepted_and_revoked(sim: RunningSimulator) -> None:
    aws = sim.simulator.aws
    aws.accept("AKIDTEAM", "team-secret")
    client = bedrock_client(sim.base_url, access_key="AKIDTEAM", secret_key="team-secret")
    assert (await in_thread(lambda: converse(client)))["stopReason"] == "end_turn"
    aws.revoke("AKIDTEAM")
    assert (await refusal(client))[1] == "UnrecognizedClientException"


async def test_temporary_credentials(sim: RunningSimulator) -> None:
    aws = sim.simulator.aws
    aws.accept("ASIATEMP", "temp-secret", session_token="token-1", expires_at=time.time() + 600)
    good = bedrock_client(
        sim.base_url, access_key="ASIATEMP", secret_key="temp-secret", session_token="token-1"
    )
    assert (await in_thread(lambda: converse(good)))["stopReason"] == "end_turn"
    assert sim.simulator.received[-1].headers["X-Amz-Security-Token"] == "token-1"

    wrong_token = bedrock_client(
        sim.base_url, access_key="ASIATEMP", secret_key="temp-secret", session_token="token-2"
    )
    assert (await refusal(wrong_token))[1] == "UnrecognizedClientException"
    no_token = bedrock_client(sim.base_url, access_key="ASIATEMP", secret_key="temp-secret")
    assert (await refusal(no_token))[1] == "UnrecognizedClientException"

    aws.accept("ASIATEMP", "temp-secret", session_token="token-1", expires_at=time.time() - 1)
    status, code, message = await refusal(good)
    assert (status, code) == (403, "ExpiredTokenException")
    assert "expired" in message


async def test_a_request_without_a_signature(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    async with http.post(sim.base_url + PATH, data=BODY) as reply:
        assert reply.status == 403
        assert reply.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException:")
        assert await reply.json() == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (
            "AWS4-HMAC-SHA256 Credential=AKIDSIMULATOR/20250101/us-east-1/bedrock/aws4_request",
            "IncompleteSignatureException",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=00",
            "IncompleteSignatureException",
        ),
        ("Basic dXNlcjpwYXNz", "IncompleteSignatureException"),
        ("Bearer not-a-known-key", "UnrecognizedClientException"),
    ],
)
async def test_malformed_authorization(
    http: aiohttp.ClientSession, sim: RunningSimulator, authorization: str, code: str
) -> None:
    headers = {"Authorization": authorization, "X-Amz-Date": "20250101T000000Z"}
    async with http.post(sim.base_url + PATH, data=BODY, headers=headers) as reply:
        assert reply.status == 403
        assert reply.headers["x-amzn-ErrorType"].split(":")[0] == code
        # Nothing of the credential is echoed back.
        assert "AKIDSIMULATOR" not in (await reply.json())["message"]


async def test_a_body_changed_after_signing(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    tampered = BODY.replace(b"Hello", b"Howdy")
    async with await signed_post(http, sim.base_url, PATH, BODY, send_body=tampered) as reply:
        assert reply.status == 403
        assert reply.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException:")
    async with await signed_post(http, sim.base_url, PATH, BODY) as reply:
        assert reply.status == 200


async def test_a_signature_for_another_host(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    """What a proxy that forwards a request signed for itself to AWS would see."""
    signed_for = "http://bedrock-runtime.us-east-1.amazonaws.com" + PATH
    headers = signed_headers(signed_for, BODY)
    url = URL(sim.base_url + PATH, encoded=True)
    async with http.post(url, data=BODY, headers=headers) as reply:
        assert reply.status == 403
        assert reply.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException:")
    # The same signature with the Host it was made for passes.
    headers["Host"] = "bedrock-runtime.us-east-1.amazonaws.com"
    async with http.post(url, data=BODY, headers=headers) as reply:
        assert reply.status == 200


async def test_a_signature_scoped_to_another_service(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    async with await signed_post(
        http, sim.base_url, PATH, BODY, service="bedrock-runtime"
    ) as reply:
        assert reply.status == 403
        assert "scoped to correct service: 'bedrock'" in (await reply.json())["message"]


async def test_a_region_can_be_required(sim: RunningSimulator) -> None:
    sim.simulator.aws.region = "us-west-2"
    status, code, message = await refusal(bedrock_client(sim.base_url, region="us-east-1"))
    assert (status, code) == (403, "InvalidSignatureException")
    assert "region" in message
    reply = await in_thread(lambda: converse(bedrock_client(sim.base_url, region="us-west-2")))
    assert reply["stopReason"] == "end_turn"


async def test_a_clock_skew_past_15_minutes(sim: RunningSimulator) -> None:
    client = bedrock_client(sim.base_url)
    sim.simulator.aws.clock = lambda: time.time() + 16 * 60
    status, code, message = await refusal(client)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("Signature expired:")
    sim.simulator.aws.clock = lambda: time.time() - 16 * 60
    assert (await refusal(client))[2].startswith("Signature not yet current:")
    sim.simulator.aws.clock = lambda: time.time() + 10 * 60
    assert (await in_thread(lambda: converse(client)))["stopReason"] == "end_turn"


async def test_bedrock_api_keys(sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.simulator.aws.accept_api_key("bedrock-api-key-for-tests")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-for-tests")
    client = bedrock_client(sim.base_url, access_key=None, secret_key=None)
    assert (await in_thread(lambda: converse(client)))["stopReason"] == "end_turn"
    assert sim.simulator.received[-1].headers["Authorization"].startswith("Bearer ")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "another-key")
    other = bedrock_client(sim.base_url, access_key=None, secret_key=None)
    assert (await refusal(other))[:2] == (403, "UnrecognizedClientException")


async def test_a_simulator_can_start_with_its_own_credentials() -> None:
    simulator = Simulator()
    simulator.aws = AwsAuth([AwsCredential("AKIDONE", "one")])
    running = await start_simulator(simulator)
    try:
        own = bedrock_client(running.base_url, access_key="AKIDONE", secret_key="one")
        assert (await in_thread(lambda: converse(own)))["stopReason"] == "end_turn"
        default = bedrock_client(running.base_url)
        assert (await refusal(default))[1] == "UnrecognizedClientException"
    finally:
        await running.close()
