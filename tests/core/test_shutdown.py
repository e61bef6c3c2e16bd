"""SIGTERM lets a running stream finish, answers /readyz 503 while draining, then exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import aiohttp

from tests.conftest import RunningSimulator


async def wait_for_line(stream: asyncio.StreamReader, needle: str, timeout: float = 15) -> str:
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"process ended before printing {needle!r}")
            if needle in line:
                return line


async def test_sigterm_during_a_stream_lets_it_finish_then_exits_zero(
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
    line = await wait_for_line(process.stderr, "proxy http://")
    proxy = line.split("proxy ")[1].split()[0]
    admin = line.split("admin ")[1].split()[0]
    try:
        async with aiohttp.ClientSession() as http:
            response = await http.post(
                proxy + "/v1/chat/completions",
                json={
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": "hi"}],
                    "stream": True,
                },
                headers={"x-sim-chunks": "20", "x-sim-chunk-interval-ms": "100"},
            )
            first = await response.content.readany()
            assert first
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(0.3)
            async with http.get(admin + "/readyz") as ready:
                assert ready.status == 503
            rest = await response.read()
            body = first + rest
            assert body.rstrip().endswith(b"data: [DONE]")
            assert body.count(b'"content"') >= 20
            assert time.monotonic() - signalled > 1.0
        async with asyncio.timeout(15):
            code = await process.wait()
        assert code == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
