"""10,000 distinct attribution header values through a real sidecar: the `attribution` label
keeps at most `max_values` values (+ `other`), memory stays flat, and the header is stripped
before forwarding when configured so."""

from __future__ import annotations

import asyncio
import tracemalloc

import aiohttp

from sidecar.simulate.simulator import Simulator
from tests.helpers.metrics import scrape, series, total
from tests.helpers.sidecar import Sidecars
from tests.helpers.simulator import running_simulator

CALLS = 10_000
BOUND = 50
# Where label values live: the attribution table, the sink and registry, prometheus_client.
LABEL_HOLDERS = ("sidecar/forward/attribution.py", "sidecar/telemetry/", "prometheus_client/")
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def _send(http: aiohttp.ClientSession, url: str, values: range) -> None:
    for value in values:
        headers = {"x-team": f"team-{value}", "Authorization": "Bearer sk-test"}
        async with http.post(url, json=BODY, headers=headers) as response:
            assert response.status == 200
            await response.read()


async def _calls(url: str, start: int, stop: int, workers: int = 16) -> None:
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(
            *(_send(http, url, range(start + i, stop, workers)) for i in range(workers))
        )


async def test_ten_thousand_values_keep_the_label_set_at_the_bound() -> None:
    async with running_simulator(Simulator(fastest=True)) as running:
        sidecars = Sidecars(running.url, [])
        try:
            sidecar = await sidecars.start(
                {"attribution": {"header": "x-team", "max_values": BOUND, "strip": True}}
            )
            url = sidecar.proxy_url + "/v1/chat/completions"
            await _calls(url, 0, 2_000)
            tracemalloc.start()
            try:
                before = tracemalloc.take_snapshot()
                await _calls(url, 2_000, CALLS)
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
            samples = await scrape(sidecar.admin_url)
            forwarded = list(running.sim.received)
        finally:
            await sidecars.stop_all()
    values = {
        s.labels["attribution"] for s in series(samples, "model_sidecar_attribution_requests_total")
    }
    assert len(values) == BOUND + 1
    assert "other" in values
    assert values - {"other"} <= {f"team-{n}" for n in range(CALLS)}
    assert total(samples, "model_sidecar_attribution_requests_total") == CALLS
    assert total(samples, "model_sidecar_attribution_requests_total", attribution="other") == (
        CALLS - BOUND
    )
    # Every call is still counted once on the ordinary counter.
    assert total(samples, "model_sidecar_requests_total") == CALLS
    # 8,000 new values after the warm-up: what holds label values (the attribution table, the
    # metrics and their children) does not grow with them. (Other per-call state, such as the
    # feedback ids, has bounds of its own and is not what this test is about.)
    grown = sum(
        stat.size_diff
        for stat in after.compare_to(before, "filename")
        if any(part in stat.traceback[0].filename for part in LABEL_HOLDERS)
    )
    assert grown < 64 * 1024, f"label holders grew by {grown} bytes over 8,000 new values"
    # Stripped: the provider never saw the header.
    assert forwarded and all("x-team" not in request.headers for request in forwarded)
