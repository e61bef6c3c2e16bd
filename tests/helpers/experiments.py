"""Experiment tests' material: simulated models with known behaviour, experiment configs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sidecar.simulate.profiles import FALLBACK_PROFILE, ModelProfile

QUESTION: list[Any] = [{"role": "user", "content": "Summarise this support ticket."}]
CONTROL_MODEL = "exp-control"
CANDIDATE_MODEL = "exp-candidate"


def profile(name: str, **changes: Any) -> ModelProfile:
    """A simulated model: quick and steady unless told otherwise."""
    base = replace(FALLBACK_PROFILE, name=name, ttft_s=0.0, tokens_per_second=0.0)
    return replace(base, **changes)


def split(
    control: int = 90,
    candidate: int = 10,
    *,
    name: str = "exp",
    key_header: str | None = None,
    stop_loss: dict[str, Any] | None = None,
    candidate_model: str = CANDIDATE_MODEL,
    **extra: Any,
) -> dict[str, Any]:
    """One split experiment on CONTROL_MODEL, as the config file would say it."""
    experiment: dict[str, Any] = {
        "name": name,
        "mode": "split",
        "match": {"model": CONTROL_MODEL},
        "control": {"weight": control},
        "candidates": [{"model": candidate_model, "weight": candidate}],
        **extra,
    }
    if key_header is not None:
        experiment["key_header"] = key_header
    if stop_loss is not None:
        experiment["stop_loss"] = stop_loss
    return experiment


def shadow(
    candidate_model: str = CANDIDATE_MODEL, *, name: str = "shadow-exp", **extra: Any
) -> dict[str, Any]:
    """One shadow experiment copying every CONTROL_MODEL call to `candidate_model`."""
    return {
        "name": name,
        "mode": "shadow",
        "match": {"model": CONTROL_MODEL},
        "candidates": [{"model": candidate_model, "weight": 100}],
        **extra,
    }
