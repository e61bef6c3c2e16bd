"""The admin listener's own HTTP handling over raw sockets (it runs on sidecar/http1, not
aiohttp): methods, unknown paths, oversized bodies, HEAD, keep-alive, and auth before all of
it."""

from __future__ import annotations

import asyncio
import json
import re
from urllib.parse import urlsplit

from sidecar.app import Sidecar
from tests.helpers.addresses import non_loopback_address
from tests.helpers.experiments import split
from tests.helpers.sidecar import SidecarFactory


async def exchange(host: str, port: int, data: bytes) -> bytes:
    """Send `data` on a fresh connection; everything the admin listener answers until it closes."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: admin", "Connection: close", *headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def call(sidecar: Sidecar, data: bytes) -> tuple[int, dict[str, str], bytes]:
    port = urlsplit(sidecar.admin_url).port
    assert port is not None
    return parse(await exchange("127.0.0.1", port, data))


async def test_routes_methods_and_unknown_paths(sidecar_factory: SidecarFactory) -> None:
    sidecar = await sidecar_factory({"experiments": [split()]})
    status, headers, body = await call(sidecar, request("GET", "/healthz"))
    assert (status, body) == (200, b"ok\n")
    assert headers["content-type"].startswith("text/plain")
    # HEAD of a GET route: the same head (with the body's length), no body.
    status, headers, body = await call(sidecar, request("HEAD", "/status"))
    assert status == 200 and body == b"" and int(headers["content-length"]) > 10
    # A query string does not change the route.
    status, _, _ = await call(sidecar, request("GET", "/readyz?verbose=1"))
    assert status == 200
    # A known path with another method: 405 naming the allowed ones (loopback may call).
    status, headers, body = await call(sidecar, request("DELETE", "/metrics"))
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert "error" in json.loads(body)
    status, headers, _ = await call(sidecar, request("GET", "/experiments/exp/resume"))
    assert status == 405 and headers["allow"] == "POST"
    # Unknown paths and actions: 404 in the admin's error shape.
    for path in ("/nope", "/metrics/extra", "/experiments//resume", "/experiments/exp/frob"):
        status, _, body = await call(sidecar, request("POST", path))
        assert status == 404, path
        assert json.loads(body)["error"]["message"]
    # Path parameters are percent-decoded; the experiment is found by its name.
    status, _, body = await call(sidecar, request("POST", "/experiments/%65xp/resume"))
    assert status == 200 and json.loads(body)["resumed"] == "exp"


async def test_bodies_over_the_limit_and_bad_heads(sidecar_factory: SidecarFactory) -> None:
    sidecar = await sidecar_factory({"experiments": [split()]})
    big = b"x" * (128 * 1024)
    status, headers, _ = await call(sidecar, request("POST", "/experiments/exp/resume", body=big))
    assert status == 413 and headers["connection"] == "close"
    status, _, _ = await call(sidecar, b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400
    # The experiment was not resumed by the refused request... and still can be.
    status, _, _ = await call(sidecar, request("POST", "/experiments/exp/resume"))
    assert status == 200


async def test_keep_alive_serves_requests_in_order(sidecar_factory: SidecarFactory) -> None:
    sidecar = await sidecar_factory()
    port = urlsplit(sidecar.admin_url).port
    assert port is not None
    pipelined = (
        b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    answer = await exchange("127.0.0.1", port, pipelined)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert statuses == [b"200", b"404", b"200"]


async def test_auth_comes_before_routing_and_limits(sidecar_factory: SidecarFactory) -> None:
    """A non-loopback peer without a token learns nothing: every control request is 403,
    whether its path exists, its method fits or its body is too large."""
    outside = non_loopback_address()
    sidecar = await sidecar_factory({"admin_listen": "0.0.0.0:0", "experiments": [split()]})
    port = urlsplit(sidecar.admin_url).port
    assert port is not None
    for data in (
        request("POST", "/experiments/exp/resume"),
        request("POST", "/nope"),
        request("DELETE", "/metrics"),
        request("POST", "/experiments/exp/resume", body=b"x" * (128 * 1024)),
        request("POST", "/experiments/exp/resume", "X-Forwarded-For: 127.0.0.1"),
    ):
        status, _, body = parse(await exchange(outside, port, data))
        assert status == 403 and b"loopback" in body, data[:40]
    # Reads stay open to that peer.
    status, _, body = parse(await exchange(outside, port, request("GET", "/metrics")))
    assert status == 200 and b"# HELP" in body
