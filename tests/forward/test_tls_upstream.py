"""Real providers are HTTPS: the sidecar verifies the upstream's certificate and host name,
trusts what the system (or SSL_CERT_FILE) trusts, and relays calls over TLS unchanged."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web

from sidecar.simulate.simulator import Simulator
from tests.helpers.sdk import SDKClients
from tests.helpers.serve import serve_process

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_simulator(authority: trustme.CA) -> AsyncIterator[tuple[Simulator, str]]:
    """The simulated provider behind HTTPS with a certificate for `localhost` only."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    sim = Simulator()
    runner = web.AppRunner(sim.build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    port = runner.addresses[0][1]
    yield sim, f"https://localhost:{port}"
    await runner.cleanup()


async def test_calls_and_streams_reach_an_https_upstream(
    tls_simulator: tuple[Simulator, str], authority: trustme.CA, sdk: SDKClients, tmp_path: Path
) -> None:
    sim, url = tls_simulator
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    async with serve_process(url, env={"SSL_CERT_FILE": str(bundle)}) as served:
        client = sdk.openai(served.proxy)
        reply = await client.chat.completions.create(**CHAT)
        assert reply.choices[0].message.content
        stream = await client.chat.completions.create(**CHAT, stream=True)
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
        assert text
    assert len(sim.received) == 2
    assert all(call.headers.get("Host", "").startswith("localhost:") for call in sim.received)


async def test_an_untrusted_certificate_is_refused_with_a_502(
    tls_simulator: tuple[Simulator, str],
) -> None:
    sim, url = tls_simulator
    async with serve_process(url) as served, aiohttp.ClientSession() as http:
        async with http.post(served.proxy + "/v1/chat/completions", json=CHAT) as response:
            assert response.status == 502
            body = await response.json()
    assert "could not be reached" in body["error"]["message"]
    assert len(sim.received) == 0
