"""The simulated provider (sidecar/simulate) served on a loopback port for a test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from sidecar.simulate.simulator import Simulator


class RunningSimulator:
    """A Simulator served on a loopback port."""

    def __init__(self, sim: Simulator, runner: web.AppRunner) -> None:
        self.sim = sim
        self.runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def running_simulator(sim: Simulator | None = None) -> AsyncIterator[RunningSimulator]:
    """`sim` (default: the default model profiles) on 127.0.0.1, stopped on exit."""
    sim = sim or Simulator()
    runner = web.AppRunner(sim.build_app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield RunningSimulator(sim, runner)
    finally:
        await runner.cleanup()
