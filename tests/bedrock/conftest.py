"""Fixtures: botocore kept away from the machine's AWS setup, the simulated Bedrock with a
Claude profile, the pod's credentials in the sidecar's environment, and a sidecar with a
`bedrock` upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.app import Sidecar
from sidecar.simulate.simulator import Simulator
from tests.helpers.aws import (
    CREDENTIAL_VARIABLES,
    POD_ACCESS_KEY,
    POD_SECRET_KEY,
    POD_SESSION_TOKEN,
    isolated_aws_environ,
    pod_environ,
)
from tests.helpers.bedrock import REGION, SONNET_PROFILE
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator, running_simulator


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS credentials or config of the machine reach botocore (in this process and in
    the sidecars it starts)."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in isolated_aws_environ(tmp_path).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    """The simulated providers with a Claude-on-Bedrock profile (cache, TTFT, paced stream)."""
    async with running_simulator(Simulator([SONNET_PROFILE], seed=7)) as running:
        yield running


@pytest.fixture
def pod_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, simulator: RunningSimulator
) -> None:
    """The pod's temporary credentials in the standard variables, accepted by the simulator."""
    simulator.sim.aws.accept(POD_ACCESS_KEY, POD_SECRET_KEY, session_token=POD_SESSION_TOKEN)
    for name, value in pod_environ(tmp_path).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bedrock_upstream(simulator: RunningSimulator) -> dict[str, object]:
    """Config overrides adding the `bedrock` upstream at the simulator."""
    return {"upstreams": {"bedrock": {"url": simulator.url, "region": REGION}}}


@pytest.fixture
async def bedrock_sidecar(
    sidecar_factory: SidecarFactory, bedrock_upstream: dict[str, object], pod_credentials: None
) -> Sidecar:
    """A started sidecar whose `bedrock` upstream is the simulator, with the pod's credentials."""
    return await sidecar_factory(bedrock_upstream)
