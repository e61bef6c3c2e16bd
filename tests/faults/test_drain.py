"""SIGTERM under load: in-flight calls finish; later calls are refused, never half-answered."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from tests.helpers.serve import serve_process
from tests.helpers.simulator import RunningSimulator

IN_FLIGHT = 40


async def test_sigterm_under_load_finishes_every_call_and_refuses_new_ones_cleanly(
    simulator: RunningSimulator,
) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    slow = {"x-sim-chunks": "15", "x-sim-chunk-interval-ms": "100"}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with (
        serve_process(simulator.url) as served,
        aiohttp.ClientSession(connector=connector) as http,
    ):
        url = served.proxy + "/v1/chat/completions"

        async def streamed_call() -> bytes:
            async with http.post(url, json={**body, "stream": True}, headers=slow) as response:
                assert response.status == 200
                return await response.read()

        calls = [asyncio.create_task(streamed_call()) for _ in range(IN_FLIGHT)]
        await asyncio.sleep(0.5)  # every call is now streaming
        served.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        late_outcomes = []
        for _ in range(5):
            try:
                async with http.post(url, json=body) as late:
                    late_outcomes.append(("answered", late.status, await late.read()))
            except aiohttp.ClientConnectionError as exc:
                late_outcomes.append(("refused", 0, type(exc).__name__.encode()))
        results = await asyncio.gather(*calls)
        assert all(r.rstrip().endswith(b"data: [DONE]") for r in results)
        assert all(r.count(b'"content"') >= 15 for r in results)
        # Listening stopped at SIGTERM: new calls are refused at connect, never half-written.
        assert [kind for kind, _, _ in late_outcomes] == ["refused"] * 5, late_outcomes
        async with asyncio.timeout(20):
            assert await served.process.wait() == 0
