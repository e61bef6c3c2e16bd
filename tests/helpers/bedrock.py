"""Reaching the simulated Bedrock: boto3 clients, and raw SigV4-signed requests built with
botocore's signer (for what boto3 hides: raw frames, broken bodies, forged hosts)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from sidecar.simulate.profiles import ModelProfile
from sidecar.simulate.sigv4 import SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY

T = TypeVar("T")
REGION = "us-east-1"
# An app's own AWS credentials, which the simulated Bedrock does not accept: a call that
# succeeds through the sidecar was signed again by it.
APP_ACCESS_KEY = "AKIDAPPONLYNOTACCEPTED"
APP_SECRET_KEY = "app-secret-not-accepted"
SONNET = "us.anthropic.claude-sonnet-4-20250514-v1:0"
SONNET_RESPONSE_MODEL = "claude-sonnet-4-20250514"
# A Bedrock model with a prompt cache, a time to first token and a paced stream.
SONNET_PROFILE = ModelProfile(
    name=SONNET,
    response_model=SONNET_RESPONSE_MODEL,
    ttft_s=0.06,
    tokens_per_second=2000.0,
    output_tokens=12,
    cache_read_share=0.5,
    cache_write_share=0.25,
)


def bedrock_client(
    base_url: str,
    *,
    access_key: str | None = SIMULATOR_ACCESS_KEY,
    secret_key: str | None = SIMULATOR_SECRET_KEY,
    session_token: str | None = None,
    region: str = REGION,
) -> Any:
    """A boto3 `bedrock-runtime` client for `base_url` that does not retry."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "bedrock-runtime",
        endpoint_url=base_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=Config(retries={"total_max_attempts": 1}),
    )


async def in_thread(work: Callable[[], T]) -> T:
    """Run blocking boto3 work while the simulator keeps serving on this event loop."""
    return await asyncio.to_thread(work)


def app_client(base_url: str) -> Any:
    """A bedrock-runtime client with the app's own credentials (refused by the simulator)."""
    return bedrock_client(base_url, access_key=APP_ACCESS_KEY, secret_key=APP_SECRET_KEY)


def model_path(model_id: str, operation: str) -> str:
    """`/model/{modelId}/{operation}` with the id encoded as boto3 encodes it."""
    return f"/model/{quote(model_id, safe='')}/{operation}"


def signed_headers(
    url: str,
    body: bytes,
    *,
    access_key: str = SIMULATOR_ACCESS_KEY,
    secret_key: str = SIMULATOR_SECRET_KEY,
    session_token: str | None = None,
    region: str = REGION,
    service: str = "bedrock",
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers of a POST to `url` signed with botocore's SigV4 signer."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    credentials = Credentials(access_key, secret_key, session_token)
    SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())


async def signed_post(
    http: aiohttp.ClientSession,
    base_url: str,
    path: str,
    body: bytes,
    *,
    send_body: bytes | None = None,
    **signing: Any,
) -> aiohttp.ClientResponse:
    """POST `body` signed for `base_url + path` (`send_body` replaces it after signing).

    The path is sent exactly as signed: aiohttp would otherwise decode `%3A` on the way.
    """
    url = base_url + path
    headers = signed_headers(url, body, **signing)
    data = body if send_body is None else send_body
    return await http.post(URL(url, encoded=True), data=data, headers=headers)
