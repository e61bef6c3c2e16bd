"""Staged rollouts decided for the whole fleet: three sidecars in front of the simulator, a real
Prometheus scraping all three, every pod evaluating the same PromQL every second.

A healthy candidate goes 1 → 5 → 25 → 50 → 100 on every pod; one that fails at 25 % is rolled
back on every pod within one evaluation interval; with Prometheus stopped every pod holds its
step, and resumes when it is back; a pod restarted mid-rollout joins at the fleet's step."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from sidecar.simulate.profiles import ModelProfile
from tests.helpers.experiments import CANDIDATE_MODEL
from tests.helpers.metrics import scrape, total
from tests.helpers.prometheus import PrometheusServer, running_prometheus
from tests.helpers.rollout import (
    EXPERIMENT,
    INTERVAL,
    STEPS,
    Fleet,
    path,
    reached,
    rollout_experiment,
    states,
)
from tests.helpers.sidecar import SidecarFactory

pytestmark = pytest.mark.slow

STEP_STATES = [f"step_{step}" for step in STEPS]


@pytest.fixture
async def fleet(sidecar_factory: SidecarFactory) -> AsyncIterator[Fleet]:
    fleet = Fleet(sidecar_factory)
    yield fleet
    await fleet.stop()


@pytest.fixture
async def prometheus(fleet: Fleet, tmp_path: Path) -> AsyncIterator[PrometheusServer]:
    async with running_prometheus(fleet.targets, tmp_path / "prometheus") as server:
        yield server


async def test_a_healthy_candidate_goes_through_every_step_on_every_pod(
    fleet: Fleet, prometheus: PrometheusServer, models: dict[str, ModelProfile]
) -> None:
    await fleet.start(rollout_experiment(prometheus.url))
    found = await fleet.wait_for(
        lambda found: states(found) == ["promoted"] * 3, 90, "every pod promoted"
    )
    for rollout in found:
        # Each pod held each step in turn; none skipped one.
        assert path(rollout) == [*STEP_STATES, "promoted"], rollout["transitions"]
        assert rollout["weight"] == 100
    # The pods moved together: each step began on all three within one evaluation interval.
    for state in [*STEP_STATES[1:], "promoted"]:
        times = reached(found, state)
        assert max(times) - min(times) <= INTERVAL + 0.2, (state, times)
    series = await prometheus.query('model_sidecar_rollout_weight{experiment="rollout"}')
    assert sorted(float(s["value"][1]) for s in series) == [100.0] * 3


async def test_a_candidate_failing_at_25_is_rolled_back_on_every_pod_together(
    fleet: Fleet, prometheus: PrometheusServer, models: dict[str, ModelProfile]
) -> None:
    await fleet.start(rollout_experiment(prometheus.url))
    await fleet.wait_for(lambda found: states(found) == ["step_25"] * 3, 90, "every pod at step 25")
    models[CANDIDATE_MODEL] = replace(models[CANDIDATE_MODEL], error_rate=1.0)
    found = await fleet.wait_for(
        lambda found: states(found) == ["rolled_back"] * 3, 30, "every pod rolled back"
    )
    times = reached(found, "rolled_back")
    # Within one evaluation tick of each other; a transition's time also carries its own
    # query round trip, which a loaded machine stretches (as for the steps above).
    assert max(times) - min(times) <= INTERVAL + 0.2, times
    for rollout in found:
        assert path(rollout) == [*STEP_STATES[:3], "rolled_back"]
        assert rollout["weight"] == 0
        last = rollout["transitions"][-1]
        # Each pod judged the fleet's calls itself, or followed the first pod that did.
        assert last["reason"] in ("errors", "fleet"), last
    details = [
        r["transitions"][-1]["detail"] for r in found if r["transitions"][-1]["reason"] == "errors"
    ]
    assert details and "error ratio" in details[0] and "80% interval" in details[0]
    # Rolled back means no candidate calls: every call now goes to the control.
    for pod in fleet.pods:
        assert pod is not None
        assert pod.experiments.status()[EXPERIMENT]["weights"] == {"control": 100.0}


async def test_without_prometheus_every_pod_holds_then_resumes_and_a_restarted_pod_rejoins(
    fleet: Fleet, prometheus: PrometheusServer, models: dict[str, ModelProfile]
) -> None:
    await fleet.start(rollout_experiment(prometheus.url))
    await fleet.wait_for(lambda found: states(found) == ["step_5"] * 3, 90, "every pod at step 5")
    prometheus.stop()
    held = await fleet.wait_for(
        lambda found: all(r["decision_error"] for r in found), 10, "every pod saw the error"
    )
    step = states(held)
    # Three more evaluations without Prometheus: no pod moves.
    await asyncio.sleep(3 * INTERVAL)
    still = await fleet.rollouts()
    assert states(still) == step
    assert all("holding" in r["why"] for r in still), [r["why"] for r in still]
    for pod in fleet.pods:
        assert pod is not None
        errors = total(await scrape(pod.admin_url), "model_sidecar_rollout_decision_errors_total")
        assert errors >= 3
    await prometheus.restart()
    await fleet.wait_for(
        lambda found: (
            all(r["weight"] >= 25 for r in found) and not any(r["decision_error"] for r in found)
        ),
        60,
        "every pod advanced again",
    )
    # A pod restarted mid-rollout joins at the fleet's step instead of starting over.
    fleet_weight = (await fleet.rollout(0))["weight"]
    # (Once Prometheus has scraped that step: a pod that starts before may join a step lower
    # and catch up at its next evaluation.)
    await prometheus.wait_for_series(
        f'model_sidecar_rollout_weight{{experiment="{EXPERIMENT}"}} >= {fleet_weight}', 3
    )
    await fleet.stop_pod(2)
    await fleet.start_pod(2)
    joined = await fleet.wait_for(
        lambda found: found[2]["transitions"] != [], 20, "the restarted pod joined"
    )
    first = joined[2]["transitions"][0]
    assert first["reason"] == "fleet" and first["from"] == "pending", first
    assert joined[2]["weight"] >= fleet_weight
    assert "joined the fleet" in first["detail"]
