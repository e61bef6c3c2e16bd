"""Simulated LLM providers for the demo, the tests and the benchmark.

OpenAI, Azure OpenAI, Anthropic, Gemini (Gemini API and Vertex AI, with Claude on Vertex)
and Ollama, each in its own wire format; the paths are listed in routes.py.
"""

from sidecar.simulate.azure_wire import DEFAULT_DEPLOYMENTS
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
    "DEFAULT_DEPLOYMENTS",
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
