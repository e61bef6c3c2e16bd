"""Shared fixtures: a running simulated provider and sidecars pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest
from aiohttp import web

from sidecar.app import Sidecar
from sidecar.config.models import SidecarConfig
from sidecar.pipeline import Sink
from sidecar.record import CallRecord
from sidecar.simulate.simulator import Simulator

API_KEY = "sk-test-SECRET-0123456789abcdef"


class RecordingSink:
    """A sink that keeps every finished CallRecord, for assertions."""

    name = "recording"

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self.started: list[CallRecord] = []
        self._arrived = asyncio.Event()

    def call_started(self, record: CallRecord) -> None:
        self.started.append(record)

    def call_finished(self, record: CallRecord) -> None:
        self.records.append(record)
        self._arrived.set()

    def dropped(self, record: CallRecord) -> None:
        return None

    def close(self) -> None:
        return None

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[CallRecord]:
        """Wait until at least `count` records arrived; return them all."""
        async with asyncio.timeout(timeout):
            while len(self.records) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.records


class RunningSimulator:
    """A Simulator served on a loopback port."""

    def __init__(self, sim: Simulator, runner: web.AppRunner) -> None:
        self.sim = sim
        self.runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    """The simulated provider on 127.0.0.1 with its default model profiles."""
    sim = Simulator()
    runner = web.AppRunner(sim.build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield RunningSimulator(sim, runner)
    await runner.cleanup()


def sidecar_config(upstream_url: str, overrides: dict[str, Any] | None = None) -> SidecarConfig:
    """A config with listeners on free loopback ports and every upstream at `upstream_url`."""
    data: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "admin_listen": "127.0.0.1:0",
        "upstreams": {name: {"url": upstream_url} for name in ("openai", "anthropic", "gemini")},
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return SidecarConfig.model_validate(data)


SidecarFactory = Callable[..., Awaitable[Sidecar]]


@pytest.fixture
def records() -> RecordingSink:
    """Collects the CallRecords of sidecars made by `sidecar_factory`."""
    return RecordingSink()


@pytest.fixture
async def sidecar_factory(
    simulator: RunningSimulator, records: RecordingSink
) -> AsyncIterator[SidecarFactory]:
    """Makes started sidecars pointed at the simulator; stops them at teardown."""
    made: list[Sidecar] = []

    async def make(
        config_overrides: dict[str, Any] | None = None,
        environ: dict[str, str] | None = None,
        extra_sinks: Sequence[Sink] = (),
    ) -> Sidecar:
        config = sidecar_config(simulator.url, config_overrides)
        sidecar = Sidecar(config, extra_sinks=[records, *extra_sinks], environ=environ or {})
        await sidecar.start()
        made.append(sidecar)
        return sidecar

    yield make
    for sidecar in made:
        await sidecar.stop()


@pytest.fixture
async def sidecar(sidecar_factory: SidecarFactory) -> Sidecar:
    """One started sidecar with the default configuration."""
    return await sidecar_factory()


class SDKClients:
    """Official SDK clients made for a test, closed at its end."""

    def __init__(self) -> None:
        self._made: list[Any] = []

    def openai(self, base: str, max_retries: int = 0) -> Any:
        """An AsyncOpenAI client whose base URL is `base` + /v1."""
        import openai

        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=max_retries)
        self._made.append(client)
        return client

    def anthropic(self, base: str, max_retries: int = 0) -> Any:
        """An AsyncAnthropic client whose base URL is `base`."""
        import anthropic

        client = anthropic.AsyncAnthropic(base_url=base, api_key=API_KEY, max_retries=max_retries)
        self._made.append(client)
        return client

    async def close(self) -> None:
        for client in self._made:
            await client.close()


@pytest.fixture
async def sdk() -> AsyncIterator[SDKClients]:
    """Makes official SDK clients and closes them after the test."""
    clients = SDKClients()
    yield clients
    await clients.close()


class _CapturedLogs(logging.Handler):
    """Keeps every record of the sidecar's (and aiohttp's) loggers, formatted as they ship."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        from sidecar.logs import JSONFormatter

        self.setFormatter(JSONFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def canary_key_never_logged() -> Iterator[None]:
    """Across every test: the test API key never appears in what the sidecar logs."""
    captured = _CapturedLogs()
    loggers = [logging.getLogger(name) for name in ("sidecar", "aiohttp")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(captured)
        logger.setLevel(logging.DEBUG)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(captured)
        logger.setLevel(level)
    leaked = [line for line in captured.lines if API_KEY in line]
    assert not leaked, f"the API key reached the logs: {leaked[:3]}"


class ServeProcess:
    """`model-sidecar serve` running as a real subprocess, with its listener URLs."""

    def __init__(self, process: asyncio.subprocess.Process, proxy: str, admin: str) -> None:
        self.process = process
        self.proxy = proxy
        self.admin = admin


@contextlib.asynccontextmanager
async def serve_process(
    upstream_url: str, env: dict[str, str] | None = None
) -> AsyncIterator[ServeProcess]:
    """Start `model-sidecar serve` with every upstream at `upstream_url` (plus `env`); kill it
    if still up."""
    import os
    import sys

    urls = ",".join(f"{name}={upstream_url}" for name in ("openai", "anthropic", "gemini"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "MODEL_SIDECAR_CONFIG": "",
            "MODEL_SIDECAR_UPSTREAMS": urls,
            **(env or {}),
        },
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(20):
            while b"proxy http://" not in (line := await process.stderr.readline()):
                assert line, "model-sidecar serve exited before listening"
        text = line.decode()
        yield ServeProcess(
            process, text.split("proxy ")[1].split()[0], text.split("admin ")[1].split()[0]
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
