"""model-sidecar: observe every LLM call of a service from beside it."""

__version__ = "0.1.0"
