"""The stop-loss: slow, failing or costly candidates are rolled back after the minimum calls;
traffic then goes to the control until an admin resumes; a healthy candidate stays."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import aiohttp
import openai
import pytest

from sidecar.app import Sidecar
from sidecar.config.experiments import StopLossConfig
from sidecar.experiments.stoploss import ArmStats, Sample, StopLoss
from sidecar.record import CallRecord
from sidecar.simulate.profiles import ModelProfile
from tests.helpers.experiments import CANDIDATE_MODEL, CONTROL_MODEL, QUESTION, profile, split
from tests.helpers.metrics import scrape, total
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory

MIN_CALLS = 10
TRIPS = "model_sidecar_stoploss_trips_total"
ACTIVE = "model_sidecar_experiment_active"


def stop_loss(**limits: Any) -> dict[str, Any]:
    return {"window_calls": 40, "min_calls": MIN_CALLS, **limits}


async def call(client: Any) -> str:
    """One call for the control model; the model that answered (or "error")."""
    try:
        answer = await client.chat.completions.create(model=CONTROL_MODEL, messages=QUESTION)
    except openai.APIStatusError:
        return "error"
    return str(answer.model)


async def status(sidecar: Sidecar) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(sidecar.admin_url + "/status") as r:
        body: dict[str, Any] = await r.json()
    return body["experiments"]["exp"]


async def calls_until_tripped(sidecar: Sidecar, client: Any, limit: int = 200) -> int:
    """Calls until the stop-loss rolled the candidate back; how many went to the candidate."""
    sent = 0
    while not (await status(sidecar))["rolled_back"]:
        assert sent < limit, "the stop-loss never tripped"
        await call(client)
        sent += 1
    return sent


async def resume(sidecar: Sidecar, name: str) -> tuple[int, dict[str, Any]]:
    url = f"{sidecar.admin_url}/experiments/{name}/resume"
    async with aiohttp.ClientSession() as http, http.post(url) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("candidate", "limits", "reason"),
    [
        pytest.param(
            profile(CANDIDATE_MODEL, ttft_s=0.1),
            {"min_p95_increase_seconds": 0.05},
            "latency",
            marks=pytest.mark.slow,
        ),
        (profile(CANDIDATE_MODEL, error_rate=1.0), {"max_error_ratio_increase": 0.2}, "errors"),
        (profile(CANDIDATE_MODEL), {"max_cost_ratio": 2, "max_p95_ratio": None}, "cost"),
    ],
    ids=["slow", "failing", "costly"],
)
async def test_a_worse_candidate_is_rolled_back_then_resumed(
    sidecar_factory: SidecarFactory,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    records: RecordingSink,
    caplog: pytest.LogCaptureFixture,
    candidate: ModelProfile,
    limits: dict[str, Any],
    reason: str,
) -> None:
    models[CONTROL_MODEL] = profile(CONTROL_MODEL, ttft_s=0.005)
    models[CANDIDATE_MODEL] = candidate
    prices = {
        CONTROL_MODEL: {"input": 1.0, "output": 1.0},
        CANDIDATE_MODEL: {"input": 3.0, "output": 3.0},
    }
    experiment = split(50, 50, stop_loss=stop_loss(**limits))
    sidecar = await sidecar_factory({"experiments": [experiment], "cost": {"overrides": prices}})
    client = sdk.openai(sidecar.proxy_url)
    before = await scrape(sidecar.admin_url)
    # Every configured reason starts at 0, so increase() sees the first trip.
    assert {s.labels["reason"] for s in before if s.name == TRIPS} >= {reason, "errors"}
    assert total(before, TRIPS) == 0
    assert total(before, ACTIVE, experiment="exp") == 1

    with caplog.at_level(logging.WARNING, logger="sidecar.experiments"):
        await calls_until_tripped(sidecar, client)
    arms = Counter(r.variant for r in records.records)
    # Judged as soon as both arms held the minimum (a call may still be in the pipeline).
    assert min(arms["candidate"], arms["control"]) in (MIN_CALLS, MIN_CALLS + 1), arms
    state = await status(sidecar)
    assert state["rolled_back"] == ["candidate"]
    assert state["weights"] == {"control": 100.0}
    (trip,) = state["trips"]
    assert trip["reason"] == reason
    assert trip["variant"] == "candidate"
    assert f"stop-loss rolled back candidate of experiment exp ({reason})" in caplog.text
    samples = await scrape(sidecar.admin_url)
    assert total(samples, TRIPS, experiment="exp", reason=reason) == 1
    assert total(samples, TRIPS) == 1
    assert total(samples, ACTIVE, experiment="exp") == 0

    # Rolled back: every call goes to the control now.
    answered = [await call(client) for _ in range(30)]
    assert set(answered) == {CONTROL_MODEL}

    code, body = await resume(sidecar, "exp")
    assert (code, body["weights"]) == (200, {"control": 50.0, "candidate": 50.0})
    assert (await status(sidecar))["trips"] == []
    assert total(await scrape(sidecar.admin_url), ACTIVE, experiment="exp") == 1
    answered = [await call(client) for _ in range(30)]
    assert CONTROL_MODEL in answered and set(answered) - {CONTROL_MODEL}
    code, body = await resume(sidecar, "nope")
    assert code == 404
    assert "no experiment 'nope' (known: exp)" in body["error"]["message"]


@pytest.mark.slow
async def test_a_healthy_candidate_is_never_rolled_back(
    sidecar_factory: SidecarFactory,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    records: RecordingSink,
) -> None:
    models[CONTROL_MODEL] = profile(CONTROL_MODEL, ttft_s=0.03)
    models[CANDIDATE_MODEL] = profile(CANDIDATE_MODEL, ttft_s=0.03)
    # The default limits and window, judged after every call of 800.
    limits = {"max_low_confidence_increase": 0.1, "max_cost_ratio": 1.5}
    sidecar = await sidecar_factory({"experiments": [split(50, 50, stop_loss=limits)]})
    client = sdk.openai(sidecar.proxy_url)

    async def worker() -> None:
        for _ in range(100):
            await call(client)

    await asyncio.gather(*(worker() for _ in range(8)))
    await records.wait_for(800)
    state = await status(sidecar)
    assert state["rolled_back"] == [] and state["trips"] == []
    assert state["stop_loss_window_calls"] == {"control": 200, "candidate": 200}
    assert total(await scrape(sidecar.admin_url), TRIPS) == 0


def sample(duration: float, error: bool = False, cost: float | None = None) -> Sample:
    return Sample(0.0, duration, error, cost, None)


def test_the_judgement_names_the_limit_crossed() -> None:
    config = StopLossConfig(
        min_calls=2, window_calls=4, max_cost_ratio=2, min_p95_increase_seconds=0.5
    )
    judge = StopLoss(config).judge
    # 1.6x but only 0.3 s slower: below the absolute guard.
    assert judge(ArmStats.of([sample(0.8)] * 4), ArmStats.of([sample(0.5)] * 4)) is None
    control = ArmStats.of([sample(1.0, cost=0.01)] * 4)
    assert judge(ArmStats.of([sample(1.4, cost=0.019)] * 4), control) is None
    reason, detail = judge(ArmStats.of([sample(1.6)] * 4), control) or ("", "")
    assert reason == "latency"
    assert detail == "p95 duration 1.600 s is 1.60x the control's 1.000 s (limit 1.5x)"
    failing = [sample(1.0), sample(1.0, error=True)] * 2
    assert judge(ArmStats.of(failing), control) == (
        "errors",
        "error ratio 50.0% vs the control's 0.0% (limit +5.0%)",
    )
    reason, _ = judge(ArmStats.of([sample(1.0, cost=0.03)] * 4), control) or ("", "")
    assert reason == "cost"


def test_a_time_window_forgets_old_calls() -> None:
    now = [100.0]
    loss = StopLoss(StopLossConfig(min_calls=1, window_calls=5, window_seconds=10), lambda: now[0])
    record = CallRecord("openai", "openai", "openai", "POST", "/", "h", 1, received=0.0, end=1.0)
    record.variant = "control"
    for _ in range(3):
        loss.observe(record, set())
    assert len(loss.window("control")) == 3
    now[0] = 111.0
    assert loss.window("control") == []
    loss.observe(record, set())
    loss.reset()
    assert loss.window("control") == []
    assert loss.reasons() == ("latency", "errors")
