"""Upstream and client failures: the right status, the right outcome recorded, still healthy."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import openai
import pytest

from sidecar.app import Sidecar
from tests.helpers.ports import closed_port
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def post(
    base: str, path: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.post(base + path, json=body, headers=headers or {}) as response:
            return response.status, dict(response.headers), await response.read()


async def assert_healthy(sidecar: Sidecar) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(sidecar.admin_url + "/healthz") as response:
            assert response.status == 200
    status, _, body = await post(sidecar.proxy_url, "/v1/chat/completions", CHAT)
    assert status == 200 and b'"choices"' in body


async def test_upstream_refused_gives_502_in_the_provider_shape(
    simulator: RunningSimulator, sidecar_factory: SidecarFactory, records: RecordingSink
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    sidecar = await sidecar_factory({"upstreams": {"anthropic": {"url": dead}}})
    status, _, body = await post(
        sidecar.proxy_url,
        "/v1/messages",
        {"model": "claude-sonnet-4-20250514", "max_tokens": 5, "messages": CHAT["messages"]},
    )
    assert status == 502
    error = json.loads(body)
    assert error["type"] == "error" and error["error"]["type"]
    (record,) = await records.wait_for(1)
    assert record.outcome == "connection_error"
    assert record.error_type == "connection_error"
    assert record.http_status is None
    await assert_healthy(sidecar)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_upstream_error_status_passes_through(
    simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink, status: int
) -> None:
    got, headers, body = await post(
        sidecar.proxy_url,
        "/v1/chat/completions",
        CHAT,
        {"x-sim-status": str(status), "x-sim-retry-after": "3"},
    )
    direct, _direct_headers, direct_body = await post(
        simulator.url,
        "/v1/chat/completions",
        CHAT,
        {"x-sim-status": str(status), "x-sim-retry-after": "3"},
    )
    assert got == direct == status
    assert body == direct_body
    if status == 429:
        assert headers.get("retry-after", headers.get("Retry-After")) == "3"
    record = (await records.wait_for(1))[0]
    assert record.outcome == "upstream_error"
    assert record.http_status == status
    assert record.error_type == str(status)
    assert record.provider_error_type
    await assert_healthy(sidecar)


async def test_sdk_sees_rate_limit_error_and_retry_count_is_recorded(
    sidecar: Sidecar, records: RecordingSink, sdk: SDKClients
) -> None:
    client = sdk.openai(sidecar.proxy_url, max_retries=2)
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            **CHAT,  # type: ignore[arg-type]
            extra_headers={"x-sim-status": "429", "x-sim-retry-after": "0"},
        )
    got = await records.wait_for(3)
    assert [r.client_retry_count for r in got] == [0, 1, 2]


async def test_upstream_timeout_before_headers_gives_504(
    sidecar_factory: SidecarFactory, records: RecordingSink
) -> None:
    sidecar = await sidecar_factory({"limits": {"read_timeout_seconds": 0.3}})
    started = time.perf_counter()
    status, _, body = await post(
        sidecar.proxy_url, "/v1/chat/completions", CHAT, {"x-sim-stall-before-headers-ms": "3000"}
    )
    assert status == 504
    assert time.perf_counter() - started < 2.0
    assert json.loads(body)["error"]["message"]
    (record,) = await records.wait_for(1)
    assert record.outcome == "timeout"
    await assert_healthy(sidecar)


async def test_upstream_dropping_mid_stream_aborts_the_apps_stream(
    sidecar: Sidecar, records: RecordingSink, sdk: SDKClients
) -> None:
    client = sdk.openai(sidecar.proxy_url)
    received = 0
    with pytest.raises(openai.APIError):
        stream = await client.chat.completions.create(
            **CHAT,  # type: ignore[arg-type]
            stream=True,
            extra_headers={"x-sim-chunks": "10", "x-sim-drop-after-chunks": "3"},
        )
        async for _ in stream:
            received += 1
    assert received >= 1
    (record,) = await records.wait_for(1)
    assert record.outcome == "stream_interrupted"
    assert record.http_status == 200
    await assert_healthy(sidecar)


async def test_upstream_stalling_mid_stream_times_out(
    sidecar_factory: SidecarFactory, records: RecordingSink
) -> None:
    sidecar = await sidecar_factory({"limits": {"read_timeout_seconds": 0.3}})
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            sidecar.proxy_url + "/v1/chat/completions",
            json={**CHAT, "stream": True},
            headers={"x-sim-chunks": "6", "x-sim-stall-mid-stream-ms": "3000"},
        ) as response,
    ):
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    (record,) = await records.wait_for(1)
    assert record.outcome == "timeout"
    await assert_healthy(sidecar)


async def test_client_disconnect_mid_stream_closes_upstream_within_a_second(
    simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink
) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            sidecar.proxy_url + "/v1/chat/completions",
            json={**CHAT, "stream": True},
            headers={"x-sim-chunks": "50", "x-sim-chunk-interval-ms": "100"},
        )
        await response.content.readany()
        response.close()
        gone = time.monotonic()
    async with asyncio.timeout(1.0):
        while not simulator.sim.disconnects:
            await asyncio.sleep(0.01)
    assert simulator.sim.disconnects[-1].time - gone < 1.0
    (record,) = await records.wait_for(1)
    assert record.outcome == "client_cancelled"
    await assert_healthy(sidecar)


async def test_request_body_over_the_limit_gets_413(
    sidecar_factory: SidecarFactory, records: RecordingSink, simulator: RunningSimulator
) -> None:
    sidecar = await sidecar_factory({"limits": {"max_request_body_bytes": 1000}})
    before = len(simulator.sim.received)
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    status, _, body = await post(sidecar.proxy_url, "/v1/chat/completions", big)
    assert status == 413
    assert "exceeds 1000 bytes" in json.loads(body)["error"]["message"]
    assert len(simulator.sim.received) == before
    await assert_healthy(sidecar)


async def test_unknown_path_is_forwarded_and_recorded_as_other(
    simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(sidecar.proxy_url + "/v1/models") as response:
            proxied = await response.read()
            assert response.status == 200
        async with http.get(simulator.url + "/v1/models") as response:
            assert await response.read() == proxied
    (record,) = await records.wait_for(1)
    assert record.request.operation == "other"
    assert record.upstream == "openai"
