"""The proxy listener: a bug in the forwarding path answers a JSON 502, logged, never a crash."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web

from sidecar.listener import HeadTimeoutServer


async def test_an_unexpected_error_becomes_a_logged_json_502(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: web.BaseRequest) -> web.StreamResponse:
        raise RuntimeError("a bug")

    runner = web.ServerRunner(HeadTimeoutServer(broken, head_timeout=5))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        with caplog.at_level(logging.ERROR, logger="sidecar.listener"):
            async with aiohttp.ClientSession() as http:
                for _ in range(2):  # the connection and the server survive
                    async with http.post(f"http://{host}:{port}/v1/chat/completions") as reply:
                        assert reply.status == 502
                        body = await reply.json()
        assert body["error"]["type"] == "sidecar_error"
        assert "unexpected error while forwarding" in caplog.text
    finally:
        await runner.cleanup()
