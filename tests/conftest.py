"""Shared fixtures: a running simulated provider, sidecars pointed at it, SDK clients, and the
check every test gets: the canary API key never reaches the sidecar's logs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from sidecar.app import Sidecar
from tests.helpers.logs import captured_logs
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY, SDKClients
from tests.helpers.sidecar import SidecarFactory, Sidecars
from tests.helpers.simulator import RunningSimulator, running_simulator


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    """The simulated provider on 127.0.0.1 with its default model profiles."""
    async with running_simulator() as running:
        yield running


@pytest.fixture
def records() -> RecordingSink:
    """Collects the CallRecords of sidecars made by `sidecar_factory`."""
    return RecordingSink()


@pytest.fixture
async def sidecar_factory(
    simulator: RunningSimulator, records: RecordingSink
) -> AsyncIterator[SidecarFactory]:
    """Makes started sidecars pointed at the simulator; stops them at teardown."""
    sidecars = Sidecars(simulator.url, [records])
    yield sidecars.start
    await sidecars.stop_all()


@pytest.fixture
async def sidecar(sidecar_factory: SidecarFactory) -> Sidecar:
    """One started sidecar with the default configuration."""
    return await sidecar_factory()


@pytest.fixture
async def sdk() -> AsyncIterator[SDKClients]:
    """Makes official SDK clients and closes them after the test."""
    clients = SDKClients()
    yield clients
    await clients.close()


@pytest.fixture(autouse=True)
def canary_key_never_logged() -> Iterator[None]:
    """Across every test: the test API key never appears in what the sidecar logs."""
    with captured_logs("sidecar", "aiohttp") as captured:
        yield
    leaked = captured.containing(API_KEY)
    assert not leaked, f"the API key reached the logs: {leaked[:3]}"
