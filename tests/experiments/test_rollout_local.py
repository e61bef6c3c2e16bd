"""A rollout judged by one sidecar (decision: local), driven by real calls from the official
SDK through the sidecar to the simulator; its control endpoints behind the admin token; the
rollout metrics on /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import aiohttp
import openai

from sidecar.app import Sidecar
from sidecar.simulate.profiles import ModelProfile
from tests.helpers.experiments import CONTROL_MODEL, QUESTION, split
from tests.helpers.metrics import scrape, total
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

TOKEN = "rollout-admin-token"
NAME = "local-rollout"


def experiment(**rollout: Any) -> dict[str, Any]:
    settings = {
        "steps": [10, 50],
        "min_calls": 10,
        "min_duration": "0.3s",
        "evaluation_interval": 0.1,
        **rollout,
    }
    gates = {"max_error_ratio_increase": 0.3}
    return split(100, 0, name=NAME, stop_loss=gates, rollout=settings)


async def rollout_status(sidecar: Sidecar) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(sidecar.admin_url + "/status") as r:
        body: dict[str, Any] = await r.json()
    status: dict[str, Any] = body["experiments"][NAME]
    return status


async def control(sidecar: Sidecar, action: str, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{sidecar.admin_url}/experiments/{NAME}/{action}"
    async with aiohttp.ClientSession() as http, http.post(url, headers=headers) as response:
        return response.status, await response.json()


async def calls_until(sidecar: Sidecar, client: Any, state: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    sent = 0
    while (await rollout_status(sidecar))["rollout"]["state"] != state:
        assert time.monotonic() < deadline, (await rollout_status(sidecar))["rollout"]
        await asyncio.gather(
            *(client.chat.completions.create(model=CONTROL_MODEL, messages=QUESTION)
              for _ in range(10))
        )  # fmt: skip
        sent += 10
    return sent


async def test_a_local_rollout_is_promoted_and_its_controls_need_the_token(
    sidecar_factory: SidecarFactory,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    tmp_path: Path,
) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    sidecar = await sidecar_factory({"experiments": [experiment()], "admin_token_file": str(token)})
    client = sdk.openai(sidecar.proxy_url)
    await calls_until(sidecar, client, "promoted")
    status = await rollout_status(sidecar)
    rollout = status["rollout"]
    assert [t["to"] for t in rollout["transitions"]] == ["step_10", "step_50", "promoted"]
    assert status["weights"] == {"control": 0.0, "candidate": 100.0}
    assert rollout["gates"]["errors"]["verdict"] == "pass"
    assert rollout["gates"]["latency"]["limit"] == 1.5
    # Every call goes to the candidate now.
    answer = await client.chat.completions.create(model=CONTROL_MODEL, messages=QUESTION)
    assert answer.model == "exp-candidate"

    # Control endpoints: refused without the token, applied with it, 409 where they do not apply.
    assert (await control(sidecar, "abort", token=None))[0] == 401
    assert (await control(sidecar, "abort", token="wrong"))[0] == 401
    assert (await rollout_status(sidecar))["rollout"]["state"] == "promoted"
    code, body = await control(sidecar, "pause")
    assert code == 409 and "applies now: abort" in body["error"]["message"]
    code, body = await control(sidecar, "abort")
    assert code == 200 and (body["from"], body["to"]) == ("promoted", "rolled_back")
    assert body["weights"] == {"control": 100.0}
    code, body = await control(sidecar, "resume")
    assert code == 200 and body["to"] == "pending"
    await calls_until(sidecar, client, "step_10")
    code, body = await control(sidecar, "pause")
    assert code == 200 and body["to"] == "paused"
    code, body = await control(sidecar, "promote")
    assert code == 200 and body["to"] == "promoted"
    async with aiohttp.ClientSession() as http:
        url = f"{sidecar.admin_url}/experiments/nope/pause"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with http.post(url, headers=headers) as response:
            assert response.status == 404
            assert NAME in (await response.json())["error"]["message"]

    samples = await scrape(sidecar.admin_url)
    assert total(samples, "model_sidecar_rollout_weight", experiment=NAME) == 100
    assert total(samples, "model_sidecar_rollout_state", experiment=NAME, state="promoted") == 1
    assert total(samples, "model_sidecar_rollout_state", experiment=NAME, state="step_10") == 0
    transitions = "model_sidecar_rollout_transitions_total"
    assert total(samples, transitions, experiment=NAME, to_state="rolled_back", reason="abort") == 1
    assert total(samples, transitions, experiment=NAME, from_state="step_10", to_state="step_50",
                 reason="gates_passed") == 1  # fmt: skip
    assert total(samples, "model_sidecar_rollout_decision_errors_total", experiment=NAME) == 0


async def test_a_failing_candidate_is_rolled_back_by_the_local_gates(
    sidecar_factory: SidecarFactory, sdk: SDKClients, models: dict[str, ModelProfile]
) -> None:
    models["exp-candidate"] = ModelProfile("exp-candidate", ttft_s=0.0, error_rate=1.0)
    sidecar = await sidecar_factory({"experiments": [experiment(steps=[50])]})
    client = sdk.openai(sidecar.proxy_url, max_retries=0)
    deadline = time.monotonic() + 30
    while (await rollout_status(sidecar))["rollout"]["state"] != "rolled_back":
        assert time.monotonic() < deadline
        for _ in range(10):
            with contextlib.suppress(openai.APIStatusError):
                await client.chat.completions.create(model=CONTROL_MODEL, messages=QUESTION)
    rollout = (await rollout_status(sidecar))["rollout"]
    last = rollout["transitions"][-1]
    assert last["reason"] == "errors" and "80% interval" in last["detail"]
    assert rollout["weight"] == 0


async def test_a_failing_query_holds_the_rollout_and_is_counted(
    sidecar_factory: SidecarFactory, simulator: RunningSimulator
) -> None:
    # Something that answers HTTP but is no Prometheus: every query fails.
    prometheus = {"url": simulator.url + "/not-prometheus", "timeout": "2s"}
    rollout = experiment(decision="prometheus", prometheus=prometheus)
    sidecar = await sidecar_factory({"experiments": [rollout]})
    deadline = time.monotonic() + 10
    while True:
        samples = await scrape(sidecar.admin_url)
        errors = total(samples, "model_sidecar_rollout_decision_errors_total", experiment=NAME)
        if errors >= 3:
            break
        assert time.monotonic() < deadline, errors
        await asyncio.sleep(0.1)
    status = (await rollout_status(sidecar))["rollout"]
    # Never advanced blind: still pending, no weight exported, the reason in /status.
    assert status["state"] == "pending" and status["weight"] == 0
    assert status["decision_error"] and "holding" in status["why"]
    assert not [s for s in samples if s.name == "model_sidecar_rollout_weight"]


async def test_a_removed_rollout_takes_its_gauges_with_it(
    sidecar_factory: SidecarFactory, sdk: SDKClients, models: dict[str, ModelProfile]
) -> None:
    sidecar = await sidecar_factory({"experiments": [experiment()]})
    await calls_until(sidecar, sdk.openai(sidecar.proxy_url), "step_10")
    samples = await scrape(sidecar.admin_url)
    assert total(samples, "model_sidecar_rollout_state", experiment=NAME, state="step_10") == 1
    sidecar.reload(sidecar.config.model_copy(update={"experiments": []}))
    samples = await scrape(sidecar.admin_url)
    gauges = ("model_sidecar_rollout_state", "model_sidecar_rollout_weight")
    assert not [s for s in samples if s.name in gauges and s.labels.get("experiment") == NAME]
    # Counters stay (Prometheus keeps their history).
    assert total(samples, "model_sidecar_rollout_transitions_total", experiment=NAME) == 1
