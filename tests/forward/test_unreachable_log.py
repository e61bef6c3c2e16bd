"""An upstream that cannot be reached: the log says why (certificate, DNS, refused), at most
once a minute per upstream and reason, and never with the call's query or credentials."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from sidecar.forward.unreachable import UnreachableLog, unreachable_reason
from sidecar.http1.errors import UpstreamConnectError, UpstreamDisconnected
from sidecar.simulate.simulator import Simulator
from tests.helpers.logs import captured_logs
from tests.helpers.ports import closed_port_url
from tests.helpers.sdk import API_KEY
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.tls import self_signed_context

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-3-5-haiku-latest", "max_tokens": 8, "messages": CHAT["messages"]}
GEMINI = {"contents": [{"parts": [{"text": "hi"}]}]}
SECRET_QUERY = "key=query-secret-5d1f"


@pytest.fixture
async def self_signed_upstream(tmp_path: Path) -> AsyncIterator[str]:
    """The simulated provider behind HTTPS with a certificate that signs itself."""
    runner = web.AppRunner(Simulator().build_app(), access_log=None)
    await runner.setup()
    context = self_signed_context("localhost", tmp_path)
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    yield f"https://localhost:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_the_reason_is_logged_once_a_minute_per_upstream_and_reason(
    sidecar_factory: SidecarFactory, self_signed_upstream: str
) -> None:
    sidecar = await sidecar_factory(
        {
            "upstreams": {
                "openai": {"url": self_signed_upstream},
                "anthropic": {"url": closed_port_url()},
                "gemini": {"url": "http://upstream.invalid"},
            }
        }
    )
    calls = [
        ("/v1/chat/completions", CHAT),
        ("/v1/messages", MESSAGES),
        (f"/v1beta/models/gemini-2.0-flash:generateContent?{SECRET_QUERY}", GEMINI),
    ]
    with captured_logs("sidecar") as logs:
        async with aiohttp.ClientSession() as http:
            for path, body in calls * 3:
                headers = {"Authorization": f"Bearer {API_KEY}"}
                async with http.post(sidecar.proxy_url + path, json=body, headers=headers) as reply:
                    assert reply.status == 502
                    assert "could not be reached" in await reply.text()
    entries = [json.loads(line) for line in logs.containing("could not be reached")]
    reasons = {entry["upstream"]: entry["reason"] for entry in entries}
    assert len(entries) == 3, "three calls each, one line per upstream and reason"
    assert reasons["openai"] == "certificate verify failed: self-signed certificate"
    assert reasons["anthropic"] == "connection refused"
    assert reasons["gemini"].startswith("DNS lookup of upstream.invalid failed: ")
    assert all(entry["level"] == "warning" for entry in entries)
    assert not logs.containing("query-secret") and not logs.containing(API_KEY)


def test_a_minute_later_the_same_reason_is_logged_again() -> None:
    now = [1000.0]
    unreachable = UnreachableLog(clock=lambda: now[0])
    refused = UpstreamConnectError("cannot connect")
    refused.__cause__ = ConnectionRefusedError(111, "Connect call failed")
    with captured_logs("sidecar") as logs:
        unreachable.note("openai", "api.openai.com", 443, refused)
        now[0] += 30
        unreachable.note("openai", "api.openai.com", 443, refused)  # within the minute
        unreachable.note("vllm", "vllm", 8000, refused)  # another upstream
        unreachable.note("openai", "api.openai.com", 443, UpstreamDisconnected("closed"))
        now[0] += 31
        unreachable.note("openai", "api.openai.com", 443, refused)
    lines = logs.containing("could not be reached")
    assert len(lines) == 4
    assert "'openai' (api.openai.com:443) could not be reached: connection refused" in lines[0]


def test_reasons_from_the_chained_cause() -> None:
    several = OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 1, 0, 0), "
        "[Errno 111] Connect call failed ('127.0.0.1', 1)"
    )
    error = UpstreamConnectError("cannot connect to http://localhost:1")
    error.__cause__ = several
    assert unreachable_reason(error) == "connection refused"
    timed_out = UpstreamConnectError("connecting to https://x:443 timed out after 10 s")
    timed_out.__cause__ = TimeoutError()
    assert "timed out" in unreachable_reason(timed_out)
    closed = UpstreamConnectError("the upstream pool is closed")
    assert unreachable_reason(closed) == "the upstream pool is closed"
