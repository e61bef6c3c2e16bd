"""Fuzzed bad input: no crash, no unhandled exception, no foreign host, the next call intact."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.app import Sidecar
from sidecar.logs import is_client_protocol_error
from sidecar.simulate.simulator import Simulator
from tests.helpers.sidecar import sidecar_config

VALID = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'
PATHS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/messages",
    "/v1beta/models/gemini-2.0-flash:generateContent",
    "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
)


class ErrorLog(logging.Handler):
    """Collects ERROR records: an unhandled exception in a handler is logged at ERROR."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if is_client_protocol_error(record):
            return  # a malformed request aiohttp refused with a 4xx: handled, not a crash
        self.messages.append(f"{record.name}: {record.getMessage()} {record.exc_info!r}")


class Stack:
    """Simulator, decoy and sidecar on a private event loop in a thread, for blocking clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.decoy_hits: list[str] = []
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sim = Simulator()
        self.sidecar: Sidecar
        self._run(self._start())

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    async def _start(self) -> None:
        self.sim_runner = web.AppRunner(self.sim.build_app(), access_log=None)
        await self.sim_runner.setup()
        await web.TCPSite(self.sim_runner, "127.0.0.1", 0).start()
        host, port = self.sim_runner.addresses[0][:2]

        async def decoy(request: web.Request) -> web.Response:
            self.decoy_hits.append(request.path_qs)
            return web.Response(text="decoy")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", decoy)
        self.decoy_runner = web.AppRunner(app, access_log=None)
        await self.decoy_runner.setup()
        await web.TCPSite(self.decoy_runner, "127.0.0.1", 0).start()
        dhost, dport = self.decoy_runner.addresses[0][:2]
        self.decoy = f"{dhost}:{dport}"
        config = sidecar_config(
            f"http://{host}:{port}", {"limits": {"client_read_timeout_seconds": 2}}
        )
        self.sidecar = Sidecar(config, environ={})
        await self.sidecar.start()
        proxy_host, proxy_port = self.sidecar.proxy_url.removeprefix("http://").rsplit(":", 1)
        self.proxy = (proxy_host, int(proxy_port))
        self.direct = (host, port)

    def close(self) -> None:
        async def stop() -> None:
            await self.sidecar.stop()
            await self.sim_runner.cleanup()
            await self.decoy_runner.cleanup()

        self._run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def exchange(address: tuple[str, int], raw: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(address, timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(raw)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-fuzz\r\nConnection: close\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def body_of(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in response else b""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    running = Stack()
    running.errors = errors  # type: ignore[attr-defined]
    yield running
    running.close()
    logging.getLogger().removeHandler(errors)


def assert_still_intact(stack: Stack) -> None:
    """No handler error so far, no foreign host contacted, and a valid call is byte-identical."""
    errors: ErrorLog = stack.errors  # type: ignore[attr-defined]
    assert errors.messages == []
    assert stack.decoy_hits == []
    proxied = exchange(stack.proxy, post("/v1/chat/completions", VALID))
    direct = exchange(stack.direct, post("/v1/chat/completions", VALID))
    assert proxied.startswith(b"HTTP/1.1 200")
    assert body_of(proxied) == body_of(direct)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
typed_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values,
        "stream": json_values,
        "messages": json_values,
        "contents": json_values,
        "input": json_values,
        "max_tokens": json_values,
        "temperature": json_values,
        "stream_options": json_values,
        "n": json_values,
    },
).map(lambda d: json.dumps(d).encode())
bodies = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
    typed_bodies,
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 50_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 5_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(PATHS), body=bodies, stream=st.booleans())
@pytest.mark.slow
def test_random_bodies_never_break_the_sidecar(
    stack: Stack, path: str, body: bytes, stream: bool
) -> None:
    headers = "x-sim-chunks: 2\r\n" if stream else ""
    reply = exchange(stack.proxy, post(path, body, headers))
    assert reply.startswith(b"HTTP/1.1 "), reply[:100]
    errors: ErrorLog = stack.errors  # type: ignore[attr-defined]
    assert errors.messages == []


header_names = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=20,
)
header_values = st.text(
    alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=100
).map(lambda v: v.encode("latin-1"))
targets = st.one_of(
    st.sampled_from(PATHS),
    st.sampled_from(
        (
            "/../../etc/passwd",
            "/v1/../../_sidecar/x",
            "//{decoy}/v1/chat/completions",
            "http://{decoy}/v1/chat/completions",
            "https://{decoy}:443/v1/messages",
            "{decoy}",
            "*",
            "/v1/chat/completions?key=sk-leak&x=%0d%0aHost:%20{decoy}",
            "/v1/chat/completions%0d%0aHost:%20{decoy}",
            "/%2e%2e/%2e%2e/v1/models",
            "/vllm/../v1/chat/completions",
        )
    ),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60).map(
        lambda t: "/" + t
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    target=targets,
    headers=st.lists(st.tuples(header_names, header_values), max_size=6),
    crlf=st.booleans(),
    duplicate_length=st.booleans(),
    host_is_decoy=st.booleans(),
)
def test_random_targets_and_headers_never_reach_another_host(
    stack: Stack,
    target: str,
    headers: list[tuple[str, bytes]],
    crlf: bool,
    duplicate_length: bool,
    host_is_decoy: bool,
) -> None:
    target = target.replace("{decoy}", stack.decoy)
    lines = [f"POST {target} HTTP/1.1".encode()]
    lines.append(f"Host: {stack.decoy if host_is_decoy else 'localhost'}".encode())
    for name, value in headers:
        if crlf:
            value = value + b"\r\nX-Injected: 1\r\nHost: " + stack.decoy.encode()
        lines.append(name.encode() + b": " + value)
    lines.append(f"Content-Length: {len(VALID)}".encode())
    if duplicate_length:
        lines.append(f"Content-Length: {len(VALID) + 5}".encode())
    lines.append(b"Connection: close")
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + VALID
    reply = exchange(stack.proxy, raw)
    assert reply == b"" or reply.startswith(b"HTTP/1."), reply[:100]
    assert stack.decoy_hits == []
    errors: ErrorLog = stack.errors  # type: ignore[attr-defined]
    assert errors.messages == []


def test_oversized_header_is_refused_cleanly(stack: Stack) -> None:
    reply = exchange(
        stack.proxy, post("/v1/chat/completions", VALID, f"X-Big: {'a' * 200_000}\r\n")
    )
    assert re.match(rb"HTTP/1\.[01] 4\d\d ", reply), reply[:100]
    assert_still_intact(stack)


def test_everything_still_works_after_the_fuzzing(stack: Stack) -> None:
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(50):
        exchange(stack.proxy, post("/v1/chat/completions", b"[" * 50_000 + b"]" * 50_000))
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024, f"peak RSS grew {grown_kib} KiB over 50 deep bodies"
    assert_still_intact(stack)
