"""Fixtures for the experiment tests: the simulator's profiles with the experiment models."""

from __future__ import annotations

import pytest

from sidecar.simulate.profiles import ModelProfile
from tests.helpers.experiments import CANDIDATE_MODEL, CONTROL_MODEL, profile
from tests.helpers.simulator import RunningSimulator


@pytest.fixture
def models(simulator: RunningSimulator) -> dict[str, ModelProfile]:
    """The simulator's profiles: add experiment models by assigning to this mapping."""
    sim_profiles: dict[str, ModelProfile] = simulator.sim.profiles
    sim_profiles[CONTROL_MODEL] = profile(CONTROL_MODEL, output_tokens=20)
    sim_profiles[CANDIDATE_MODEL] = profile(CANDIDATE_MODEL, output_tokens=20)
    return sim_profiles
