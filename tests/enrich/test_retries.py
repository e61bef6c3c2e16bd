"""Retries: client retries from the SDK and Idempotency-Key; the sidecar's own retry policy."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest

from sidecar.telemetry.span_attributes import RETRY_EVENT, span_events
from tests.helpers.metrics import scrape, series, total
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

RETRIES = "model_sidecar_retries_total"
DURATION_COUNT = "gen_ai_client_operation_duration_seconds_count"
CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "retry me"}]}


def fast_retries(**overrides: Any) -> dict[str, Any]:
    """A retry policy that waits milliseconds, for tests."""
    return {
        "retries": {
            "enabled": True,
            "backoff_initial_seconds": 0.01,
            "backoff_max_seconds": 0.02,
            **overrides,
        }
    }


async def post(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=BODY, headers=headers or {}) as response:
            return response.status, await response.read()


async def test_the_sdk_retrying_a_429_counts_one_client_retry(
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
    simulator: RunningSimulator,
    sdk: SDKClients,
) -> None:
    sidecar = await sidecar_factory()
    simulator.sim.fail_next(1, 429, retry_after="0")
    client = sdk.openai(sidecar.proxy_url, max_retries=2)
    await client.chat.completions.create(**BODY)
    await records.wait_for(2)
    assert [r.headers["x-stainless-retry-count"] for r in simulator.sim.received] == ["0", "1"]
    samples = await scrape(sidecar.admin_url)
    assert total(samples, RETRIES, source="client", reason="") == 1
    assert total(samples, RETRIES) == 1  # the sidecar itself retried nothing
    assert total(samples, DURATION_COUNT) == 2  # the app made two calls


async def test_a_repeated_idempotency_key_counts_as_a_client_retry(
    sidecar_factory: SidecarFactory, records: RecordingSink
) -> None:
    sidecar = await sidecar_factory()
    url = sidecar.proxy_url + CHAT
    await post(url, {"Idempotency-Key": "order-17"})
    await post(url, {"Idempotency-Key": "order-18"})
    await post(url, {"Idempotency-Key": "order-17"})
    await records.wait_for(3)
    assert [r.client_retry for r in records.records] == [False, False, True]
    assert total(await scrape(sidecar.admin_url), RETRIES, source="client") == 1


async def test_the_sidecar_retries_a_503_and_succeeds(
    sidecar_factory: SidecarFactory, records: RecordingSink, simulator: RunningSimulator
) -> None:
    sidecar = await sidecar_factory(fast_retries())
    simulator.sim.fail_next(1, 503)
    status, body = await post(sidecar.proxy_url + CHAT)
    assert status == 200 and b"chat.completion" in body
    assert len(simulator.sim.received) == 2
    (record,) = await records.wait_for(1)
    assert record.http_status == 200 and record.sidecar_retries == 1
    ((name, attributes, _),) = span_events(record)
    assert name == RETRY_EVENT and attributes["model_sidecar.retry.reason"] == "503"
    samples = await scrape(sidecar.admin_url)
    assert total(samples, RETRIES, source="sidecar", reason="503") == 1
    assert total(samples, DURATION_COUNT) == 1  # one call as the app saw it
    assert total(samples, "model_sidecar_requests_total", http_status_code="200") == 1


async def test_the_sidecar_honours_retry_after(
    sidecar_factory: SidecarFactory, simulator: RunningSimulator
) -> None:
    sidecar = await sidecar_factory(fast_retries())
    simulator.sim.fail_next(1, 429, retry_after="1")
    status, _ = await post(sidecar.proxy_url + CHAT)
    assert status == 200
    first, second = simulator.sim.received
    assert second.time - first.time >= 0.95  # not the 10-20 ms backoff


async def test_a_retry_after_longer_than_allowed_goes_to_the_app(
    sidecar_factory: SidecarFactory, simulator: RunningSimulator
) -> None:
    sidecar = await sidecar_factory(fast_retries(max_retry_after_seconds=5))
    simulator.sim.fail_next(1, 429, retry_after="120")
    status, _ = await post(sidecar.proxy_url + CHAT)
    assert status == 429
    assert len(simulator.sim.received) == 1


async def test_the_sidecar_stops_at_max_attempts(
    sidecar_factory: SidecarFactory, records: RecordingSink, simulator: RunningSimulator
) -> None:
    sidecar = await sidecar_factory(fast_retries(max_attempts=3))
    simulator.sim.fail_next(10, 502)
    status, _ = await post(sidecar.proxy_url + CHAT)
    assert status == 502
    assert len(simulator.sim.received) == 3
    (record,) = await records.wait_for(1)
    assert [attempt.attempt for attempt in record.retry_attempts] == [2, 3]
    samples = await scrape(sidecar.admin_url)
    assert total(samples, RETRIES, source="sidecar", reason="502") == 2
    assert total(samples, DURATION_COUNT, error_type="502") == 1


async def test_the_sidecar_never_retries_after_the_first_byte_reached_the_app(
    sidecar_factory: SidecarFactory, records: RecordingSink, simulator: RunningSimulator
) -> None:
    sidecar = await sidecar_factory(fast_retries())
    simulator.sim.drop_next(1, after_chunks=2)
    body = {**BODY, "stream": True}
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with aiohttp.ClientSession() as http:
            async with http.post(sidecar.proxy_url + CHAT, json=body) as response:
                assert response.status == 200
                async for chunk in response.content.iter_any():
                    received += chunk
    assert b"data: " in received  # the app had bytes before the upstream died
    (record,) = await records.wait_for(1)
    assert record.outcome == "stream_interrupted"
    assert len(simulator.sim.received) == 1 and record.sidecar_retries == 0
    assert series(await scrape(sidecar.admin_url), RETRIES) == []


async def test_connect_errors_are_retried_then_answered_502(
    sidecar_factory: SidecarFactory, records: RecordingSink
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sidecar = await sidecar_factory(
        {"upstreams": {"openai": {"url": closed}}, **fast_retries(max_attempts=3)}
    )
    status, _ = await post(sidecar.proxy_url + CHAT)
    assert status == 502
    (record,) = await records.wait_for(1)
    assert record.outcome == "connection_error" and record.sidecar_retries == 2
    samples = await scrape(sidecar.admin_url)
    assert total(samples, RETRIES, source="sidecar", reason="connection_error") == 2


async def test_the_budget_caps_retries_during_an_outage(
    sidecar_factory: SidecarFactory, records: RecordingSink, simulator: RunningSimulator
) -> None:
    calls = 30
    sidecar = await sidecar_factory(
        fast_retries(max_attempts=3, budget_ratio=0.1, budget_min_retries=2)
    )
    simulator.sim.fail_next(1000, 503)  # the provider is down
    for _ in range(calls):
        status, _ = await post(sidecar.proxy_url + CHAT)
        assert status == 503
    await records.wait_for(calls)
    # Without the budget: 3 attempts per call (90). With it: at most max(2, 10% of calls).
    assert len(simulator.sim.received) == calls + 3
    samples = await scrape(sidecar.admin_url)
    assert total(samples, RETRIES, source="sidecar", reason="503") == 3
