"""SIGTERM lets a running stream finish, answers /readyz 503 while draining, then exits 0."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest

from tests.helpers.serve import serve_process
from tests.helpers.simulator import RunningSimulator


@pytest.mark.slow
async def test_sigterm_during_a_stream_lets_it_finish_then_exits_zero(
    simulator: RunningSimulator,
) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    slow = {"x-sim-chunks": "20", "x-sim-chunk-interval-ms": "100"}
    async with serve_process(simulator.url) as served, aiohttp.ClientSession() as http:
        response = await http.post(served.proxy + "/v1/chat/completions", json=body, headers=slow)
        first = await response.content.readany()
        assert first
        served.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await asyncio.sleep(0.3)
        async with http.get(served.admin + "/readyz") as ready:
            assert ready.status == 503
        streamed = first + await response.read()
        assert streamed.rstrip().endswith(b"data: [DONE]")
        assert streamed.count(b'"content"') >= 20
        assert time.monotonic() - signalled > 1.0
        async with asyncio.timeout(15):
            assert await served.process.wait() == 0
