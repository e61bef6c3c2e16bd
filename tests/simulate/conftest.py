"""Fixtures: a Simulator served on 127.0.0.1:0, and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sidecar.simulate.simulator import RunningSimulator, Simulator, start_simulator


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(seed=7)


@pytest.fixture
async def sim(simulator: Simulator) -> AsyncIterator[RunningSimulator]:
    running = await start_simulator(simulator)
    yield running
    await running.close()


@pytest.fixture
async def openai_client(sim: RunningSimulator) -> AsyncIterator[Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def anthropic_client(sim: RunningSimulator) -> AsyncIterator[Any]:
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sk-ant-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession(auto_decompress=False)
    yield session
    await session.close()
