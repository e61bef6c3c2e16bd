"""Only configured upstreams are contacted; hop-by-hop headers and credentials stay put."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from sidecar.app import Sidecar
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


@pytest.fixture
async def decoy() -> object:
    """A server that must never be contacted, standing where a forged target points."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="decoy")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield type("Decoy", (), {"hits": hits, "authority": f"{host}:{port}"})
    await runner.cleanup()


async def raw_request(base: str, head: str, body: bytes = BODY) -> bytes:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    return data


async def test_absolute_form_target_cannot_redirect_the_sidecar(
    simulator: RunningSimulator, sidecar: Sidecar, decoy: object
) -> None:
    authority = decoy.authority  # type: ignore[attr-defined]
    before = len(simulator.sim.received)
    reply = await raw_request(
        sidecar.proxy_url,
        f"POST http://{authority}/v1/chat/completions HTTP/1.1\r\n"
        f"Host: {authority}\r\nContent-Type: application/json\r\nConnection: close\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 200")
    assert decoy.hits == []  # type: ignore[attr-defined]
    assert len(simulator.sim.received) == before + 1
    assert simulator.sim.received[-1].path_qs.startswith("/v1/chat/completions")


async def test_forged_host_header_cannot_redirect_the_sidecar(
    simulator: RunningSimulator, sidecar: Sidecar, decoy: object
) -> None:
    authority = decoy.authority  # type: ignore[attr-defined]
    reply = await raw_request(
        sidecar.proxy_url,
        "POST /v1/chat/completions HTTP/1.1\r\n"
        f"Host: {authority}\r\nX-Forwarded-Host: {authority}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 200")
    assert decoy.hits == []  # type: ignore[attr-defined]
    received = simulator.sim.received[-1]
    assert received.headers["host"] != authority


async def test_hop_by_hop_headers_are_not_forwarded(
    simulator: RunningSimulator, sidecar: Sidecar
) -> None:
    await raw_request(
        sidecar.proxy_url,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Connection: close, X-Hop-Secret\r\nX-Hop-Secret: 1\r\nProxy-Authorization: Basic abc\r\n"
        "Keep-Alive: timeout=5\r\nTE: trailers\r\nX-End-To-End: kept\r\n",
    )
    headers = {k.lower() for k in simulator.sim.received[-1].headers}
    assert "x-hop-secret" not in headers
    assert "proxy-authorization" not in headers
    assert "keep-alive" not in headers and "te" not in headers
    assert "x-end-to-end" in headers


async def test_reserved_sidecar_paths_are_not_forwarded(
    simulator: RunningSimulator, sidecar: Sidecar
) -> None:
    before = len(simulator.sim.received)
    reply = await raw_request(
        sidecar.proxy_url, "POST /_sidecar/anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 404")
    assert len(simulator.sim.received) == before


async def test_credentials_never_reach_logs(
    sidecar_factory: SidecarFactory, records: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    from sidecar.logs import JSONFormatter

    sidecar = await sidecar_factory({"log": {"access_log": True}})
    caplog.set_level(logging.DEBUG)
    gemini_path = f"/v1beta/models/gemini-2.0-flash:generateContent?key={API_KEY}"
    body = b'{"contents":[{"parts":[{"text":"hi"}]}]}'
    for head in (
        f"POST {gemini_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
        f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\nConnection: close\r\n",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {API_KEY}\r\nConnection: close\r\n",
    ):
        await raw_request(sidecar.proxy_url, head, body)
    await records.wait_for(3)
    await asyncio.sleep(0.05)
    formatted = "\n".join(JSONFormatter().format(r) for r in caplog.records)
    assert (
        '"logger": "sidecar.access"' in formatted.replace('":"', '": "')
        or "sidecar.access" in formatted
    )
    assert API_KEY not in formatted
    assert all(API_KEY not in repr(r) for r in records.records)


async def test_status_and_error_bodies_never_carry_credentials(
    sidecar_factory: SidecarFactory, records: RecordingSink
) -> None:
    import aiohttp

    sidecar = await sidecar_factory(
        {"upstreams": {"vllm": {"url": "http://127.0.0.1:9", "path_prefix": "/vllm"}}}
    )
    async with aiohttp.ClientSession() as http:
        for path in ("/vllm/v1/chat/completions", f"/vllm/v1/chat/completions?key={API_KEY}"):
            async with http.post(
                sidecar.proxy_url + path,
                data=BODY,
                headers={"Authorization": f"Bearer {API_KEY}", "x-api-key": API_KEY},
            ) as response:
                assert response.status == 502
                assert API_KEY not in await response.text()
        async with http.get(sidecar.admin_url + "/status") as response:
            status = await response.text()
        async with http.get(sidecar.admin_url + "/metrics") as response:
            metrics = await response.text()
    assert "vllm" in status
    assert API_KEY not in status
    assert API_KEY not in metrics


def test_credentials_in_an_upstream_url_are_refused_with_a_clear_error() -> None:
    from sidecar.config.load import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"upstreams\.openai\.url: .*may not carry credentials"):
        load_config(environ={}, upstreams={"openai": f"https://user:{API_KEY}@api.example"})
