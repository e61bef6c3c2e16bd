"""`model-sidecar serve` exempts its start-up heap from garbage collection (no ~30 ms pauses)."""

from __future__ import annotations

import aiohttp

from tests.helpers.serve import serve_process
from tests.helpers.simulator import RunningSimulator


async def test_the_served_process_froze_its_start_up_heap(simulator: RunningSimulator) -> None:
    async with serve_process(simulator.url) as served, aiohttp.ClientSession() as http:
        async with http.get(served.admin + "/status") as response:
            status = await response.json()
    # Price data, OTel, pydantic, aiohttp: tens of thousands of long-lived objects.
    assert status["gc_frozen_objects"] > 20_000
