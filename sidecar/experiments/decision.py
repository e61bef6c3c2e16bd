"""What experiments decide about one call before it is forwarded (the proxy reads it once)."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.experiments.assignment import Arm
from sidecar.experiments.limits import ArmLimiter
from sidecar.forward.exchange import Outbound


@dataclass(frozen=True, slots=True)
class ShadowCopy:
    """One shadow copy of a call: its arm, the limiter it holds a place in, what it sends."""

    arm: Arm
    limiter: ArmLimiter
    outbound: Outbound


@dataclass(frozen=True, slots=True)
class Decision:
    """What goes upstream (the app's request, or an arm's rewrite of it), the arm's labels,
    what the experiments need of the call (`NEED_*` flags) and its shadow copies."""

    outbound: Outbound
    experiment: str = ""
    variant: str = ""
    pair_id: str = ""
    needs: int = 0
    shadows: tuple[ShadowCopy, ...] = ()
