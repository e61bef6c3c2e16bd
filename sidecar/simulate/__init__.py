"""A simulated OpenAI, Anthropic and Gemini provider for the demo, the tests and the benchmark."""

from sidecar.simulate.profiles import DEFAULT_PROFILES, FALLBACK_PROFILE, ModelProfile
from sidecar.simulate.simulator import (
    Disconnect,
    ReceivedRequest,
    RunningSimulator,
    Simulator,
    run_simulator,
    start_simulator,
)

__all__ = [
    "DEFAULT_PROFILES",
    "FALLBACK_PROFILE",
    "Disconnect",
    "ModelProfile",
    "ReceivedRequest",
    "RunningSimulator",
    "Simulator",
    "run_simulator",
    "start_simulator",
]
