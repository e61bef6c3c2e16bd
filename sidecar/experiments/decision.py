"""What experiments decide about one call before it is forwarded (the proxy reads it once)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sidecar.experiments.assignment import Arm
from sidecar.experiments.limits import ArmLimiter
from sidecar.experiments.rewrite import Rewritten
from sidecar.forward.routing import Route
from sidecar.record import RequestInfo


@dataclass(frozen=True, slots=True)
class ShadowCopy:
    """One shadow copy of a call: its arm, the limiter it holds a place in, where it goes
    and what it asks."""

    arm: Arm
    limiter: ArmLimiter
    route: Route
    request: Rewritten


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a call goes and what it asks (the app's request, or an arm's rewrite of it), its
    arm's labels, what the experiments need of it (`NEED_*` flags) and its shadow copies."""

    route: Route
    body: bytes
    json: Any
    request: RequestInfo
    experiment: str = ""
    variant: str = ""
    pair_id: str = ""
    needs: int = 0
    shadows: tuple[ShadowCopy, ...] = ()
