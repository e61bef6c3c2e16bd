"""Fixtures: official clients, and a sidecar whose every upstream is the simulator, tracing to a
receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from sidecar.simulate.azure_wire import DEFAULT_DEPLOYMENTS
from sidecar.simulate.simulator import Simulator
from tests.helpers.otlp import OtlpReceiver, start_receiver
from tests.helpers.providers import Clients, Rig, upstreams_at
from tests.helpers.records import RecordingSink
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator, running_simulator


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    """The simulator, with one more Azure deployment whose name is not its model's and whose
    model answers the same request the same way (gpt-4o does not, by design)."""
    deployments = {**DEFAULT_DEPLOYMENTS, "prod-mini": "gpt-4o-mini"}
    async with running_simulator(Simulator(deployments=deployments)) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = start_receiver("http/protobuf")
    yield running
    running.stop()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    made = Clients()
    yield made
    await made.close()


@pytest.fixture
async def rig(
    receiver: OtlpReceiver,
    sidecar_factory: SidecarFactory,
    simulator: RunningSimulator,
    records: RecordingSink,
) -> Rig:
    """A sidecar with azure (whisper deployment mapped), vertex and ollama at the simulator
    (the receiver, set up first, stops after the sidecar has flushed its spans)."""
    upstreams = upstreams_at(simulator.url, azure={"deployments": {"whisper": "whisper-1"}})
    sidecar = await sidecar_factory({"upstreams": upstreams}, environ=receiver.environ())
    return Rig(sidecar, records, receiver)
