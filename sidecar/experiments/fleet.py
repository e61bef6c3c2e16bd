"""The fleet verdict of a rollout (decision: prometheus): the gates' evidence summed over every
sidecar, and what the fleet already did, read from Prometheus over its HTTP API.

Every sidecar runs the same queries (promql.py) and judges the same numbers, so every pod of
a workload holds the same step and rolls back within one evaluation interval of the others.
Any failure — Prometheus unreachable, a query refused, an answer that does not parse — makes
the whole reading an error: the rollout holds its step rather than advance blind.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

from sidecar.config.experiments import CONTROL, RolloutPrometheusConfig, StopLossConfig
from sidecar.experiments import promql
from sidecar.experiments.gates import ArmEvidence, judge
from sidecar.experiments.rollout import FleetState, Reading

# Prometheus' answers are small; a larger one is not a Prometheus answer.
MAX_ANSWER_BYTES = 1 << 20


class DecisionError(Exception):
    """The fleet's verdict could not be read (the message says why, in one line)."""


def _duration(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))}s"


class FleetVerdict:
    """Reads one rollout's evidence and fleet state from the configured Prometheus."""

    def __init__(self, config: RolloutPrometheusConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    async def query(self, expr: str) -> dict[str, float]:
        """An instant query: value by `variant` label ("" when the series has none)."""
        # Imported here: only a fleet rollout needs an HTTP client, and a sidecar that never
        # imports aiohttp is ~20 MB smaller (tests/lifecycle/test_lazy_imports.py).
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout)
            )
        url = self.config.url.rstrip("/") + "/api/v1/query"
        try:
            async with self._session.post(url, data={"query": expr}) as response:
                body = await response.content.read(MAX_ANSWER_BYTES)
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            why = str(exc) or type(exc).__name__
            raise DecisionError(f"Prometheus at {self.config.url} unreachable: {why}") from None
        try:
            payload: Any = json.loads(body)
        except ValueError:
            raise DecisionError(f"Prometheus answered {status} with no JSON") from None
        if status != 200 or payload.get("status") != "success":
            raise DecisionError(f"query failed ({status}): {payload.get('error', '')}")
        values: dict[str, float] = {}
        for item in payload.get("data", {}).get("result", ()):
            value = float(item["value"][1])
            if not math.isnan(value):
                values[item["metric"].get("variant", "")] = value
        return values

    async def read(
        self,
        experiment: str,
        variant: str,
        step_age: float,
        limits: StopLossConfig,
        min_calls: int,
    ) -> Reading:
        """One evaluation: the gates over the fleet's calls at this step, and the fleet state."""
        evidence = promql.evidence_queries(experiment, variant, _duration(step_age))
        fleet = promql.fleet_queries(experiment, _duration(self.config.lookback))
        names = [*evidence, *fleet]
        exprs = [*evidence.values(), *fleet.values()]
        try:
            answers = await asyncio.gather(*(self.query(expr) for expr in exprs))
        except DecisionError as exc:
            return Reading(error=str(exc))
        found = dict(zip(names, answers, strict=True))

        def arm(name: str) -> ArmEvidence:
            def count(key: str) -> float:
                return found[key].get(name, 0.0)

            # increase() extrapolates each series on its own: a part never exceeds its whole.
            calls = count(promql.CALLS)
            measured = count(promql.MEASURED)
            feedback = count(promql.FEEDBACK)
            return ArmEvidence(
                calls=calls,
                errors=min(calls, count(promql.ERRORS)),
                p95=found[promql.P95].get(name),
                ttft_p95=found[promql.TTFT_P95].get(name),
                priced=max(0.0, calls - count(promql.UNPRICED)) if count(promql.COST) else 0.0,
                cost=count(promql.COST),
                measured=measured,
                low_confidence=min(measured, count(promql.LOW_CONFIDENCE)),
                feedback=feedback,
                negative_feedback=min(feedback, count(promql.NEGATIVE_FEEDBACK)),
            )

        def one(key: str) -> float | None:
            values = list(found[key].values())
            return values[0] if values else None

        state = FleetState(
            weight=one(promql.FLEET_WEIGHT),
            rolled_back=(one(promql.FLEET_ROLLED_BACK) or 0.0) >= 1,
            promoted=(one(promql.FLEET_PROMOTED) or 0.0) >= 1,
            rollbacks=one(promql.FLEET_ROLLBACKS) or 0.0,
        )
        gates = judge(arm(variant), arm(CONTROL), limits, min_calls)
        return Reading(gates=gates, fleet=state)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
