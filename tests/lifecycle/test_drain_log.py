"""SIGTERM says what it does: one line when draining starts (how many calls, the grace) and one
when the sidecar has stopped."""

from __future__ import annotations

import json
import signal

import aiohttp
import pytest

from tests.helpers.serve import serve_process
from tests.helpers.simulator import RunningSimulator


@pytest.mark.slow
async def test_sigterm_logs_the_drain_and_its_end(simulator: RunningSimulator) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    slow = {"x-sim-chunks": "10", "x-sim-chunk-interval-ms": "100"}
    async with serve_process(simulator.url) as served, aiohttp.ClientSession() as http:
        response = await http.post(served.proxy + "/v1/chat/completions", json=body, headers=slow)
        assert await response.content.readany()
        served.process.send_signal(signal.SIGTERM)
        await response.read()
        status, log = await served.stop()
    assert status == 0
    messages = [json.loads(line)["msg"] for line in log.splitlines() if line.startswith("{")]
    drain = [m for m in messages if m.startswith("draining")]
    done = [m for m in messages if m.startswith("stopped after")]
    assert drain == ["draining 1 in-flight call, grace 30 s"]
    assert len(done) == 1 and done[0].endswith("every call finished")
    assert messages.index(drain[0]) < messages.index(done[0])
