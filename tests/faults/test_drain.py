"""SIGTERM under load: in-flight calls finish; later calls are refused, never half-answered."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp

from tests.conftest import RunningSimulator

IN_FLIGHT = 40


async def test_sigterm_under_load_finishes_every_call_and_refuses_new_ones_cleanly(
    simulator: RunningSimulator,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--upstream",
        f"openai={simulator.url}",
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MODEL_SIDECAR_CONFIG": ""},
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(20):
            while b"proxy http://" not in (line := await process.stderr.readline()):
                assert line, "sidecar exited before listening"
        proxy = line.decode().split("proxy ")[1].split()[0]
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        slow = {"x-sim-chunks": "15", "x-sim-chunk-interval-ms": "100"}

        async def streamed_call(http: aiohttp.ClientSession) -> bytes:
            async with http.post(
                proxy + "/v1/chat/completions", json={**body, "stream": True}, headers=slow
            ) as response:
                assert response.status == 200
                return await response.read()

        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            calls = [asyncio.create_task(streamed_call(http)) for _ in range(IN_FLIGHT)]
            await asyncio.sleep(0.5)  # every call is now streaming
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            late_outcomes = []
            for _ in range(5):
                try:
                    async with http.post(proxy + "/v1/chat/completions", json=body) as late:
                        late_outcomes.append(("answered", late.status, await late.read()))
                except aiohttp.ClientConnectionError as exc:
                    late_outcomes.append(("refused", 0, type(exc).__name__.encode()))
            results = await asyncio.gather(*calls)
        assert all(r.rstrip().endswith(b"data: [DONE]") for r in results)
        assert all(r.count(b'"content"') >= 15 for r in results)
        # Listening stopped at SIGTERM: new calls are refused at connect, never half-written.
        assert [kind for kind, _, _ in late_outcomes] == ["refused"] * 5, late_outcomes
        async with asyncio.timeout(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
