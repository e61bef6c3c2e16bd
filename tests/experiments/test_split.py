"""Split mode through a real sidecar: shares, sticky keys across pods, untouched answers."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from sidecar.experiments.assignment import key_position
from sidecar.forward.requestid import REQUEST_ID_HEADER
from sidecar.simulate.profiles import ModelProfile
from sidecar.simulate.simulator import Simulator
from tests.helpers.experiments import CANDIDATE_MODEL, CONTROL_MODEL, QUESTION, split
from tests.helpers.metrics import scrape, total
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY, SDKClients
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

CALLS = 2000
WORKERS = 16


async def run_calls(client: Any, count: int, headers: dict[str, str] | None = None) -> list[str]:
    """`count` chat calls for CONTROL_MODEL from a few workers; the response models."""
    models: list[str] = []
    queue = iter(range(count))

    async def worker() -> None:
        for _ in queue:
            answer = await client.chat.completions.create(
                model=CONTROL_MODEL, messages=QUESTION, extra_headers=headers or {}
            )
            models.append(answer.model)

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return models


@pytest.mark.slow
async def test_a_90_10_split_over_2000_calls_is_within_statistical_bounds(
    sidecar_factory: SidecarFactory,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    records: RecordingSink,
) -> None:
    sidecar = await sidecar_factory({"experiments": [split(90, 10)]})
    answered = Counter(await run_calls(sdk.openai(sidecar.proxy_url), CALLS))
    assert set(answered) == {CONTROL_MODEL, CANDIDATE_MODEL}
    # Binomial(2000, 0.1): mean 200, sd 13.4; 5 sd either side fails once in ~3.5 million runs.
    sd = math.sqrt(CALLS * 0.1 * 0.9)
    assert abs(answered[CANDIDATE_MODEL] - 200) <= 5 * sd, answered
    done = await records.wait_for(CALLS)
    variants = Counter((r.experiment, r.variant, r.request.request_model) for r in done)
    assert variants == {
        ("exp", "control", CONTROL_MODEL): answered[CONTROL_MODEL],
        ("exp", "candidate", CANDIDATE_MODEL): answered[CANDIDATE_MODEL],
    }
    samples = await scrape(sidecar.admin_url)
    requests = "model_sidecar_requests_total"
    assert (
        total(samples, requests, experiment="exp", variant="candidate") == answered[CANDIDATE_MODEL]
    )
    assert (
        total(samples, requests, variant="control", gen_ai_request_model=CONTROL_MODEL)
        == (answered[CONTROL_MODEL])
    )


async def test_the_same_key_gets_the_same_arm_on_every_pod(
    sidecar_factory: SidecarFactory, sdk: SDKClients, models: dict[str, ModelProfile]
) -> None:
    config = {"experiments": [split(50, 50, key_header="x-user-id")]}
    pods = [await sidecar_factory(config), await sidecar_factory(config)]
    clients = [sdk.openai(pod.proxy_url) for pod in pods]
    arms: dict[str, set[str]] = {}
    for user in range(40):
        for client in clients:
            for _ in range(2):
                answer = await client.chat.completions.create(
                    model=CONTROL_MODEL, messages=QUESTION, extra_headers={"x-user-id": f"u{user}"}
                )
                arms.setdefault(f"u{user}", set()).add(answer.model)
    assert all(len(seen) == 1 for seen in arms.values()), arms
    # The arm is the documented hash: position below the candidate's 50% share → candidate.
    for user, (model,) in arms.items():
        expected = CANDIDATE_MODEL if key_position("exp", user) < 50 else CONTROL_MODEL
        assert model == expected, user
    assert {model for (model,) in arms.values()} == {CONTROL_MODEL, CANDIDATE_MODEL}


async def post(url: str, body: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=orjson.dumps(body), headers=headers) as response,
    ):
        return response.status, await response.read(), dict(response.headers)


async def test_the_app_gets_the_candidates_answer_unchanged(
    sidecar_factory: SidecarFactory, simulator: RunningSimulator, models: dict[str, ModelProfile]
) -> None:
    sidecar = await sidecar_factory({"experiments": [split(0, 100)]})
    body = {"model": CONTROL_MODEL, "messages": QUESTION, "temperature": 0.25, "seed": 7}
    path = "/v1/chat/completions"
    status, through, headers = await post(sidecar.proxy_url + path, body)
    direct_status, direct, _ = await post(simulator.url + path, body | {"model": CANDIDATE_MODEL})
    assert status == direct_status == 200
    # Byte for byte what the upstream answered the candidate's request: only the model differs
    # from what the app asked for.
    assert through == direct
    assert orjson.loads(through)["model"] == CANDIDATE_MODEL
    assert headers[REQUEST_ID_HEADER]
    sent = simulator.sim.received[-2]
    assert orjson.loads(sent.body) == body | {"model": CANDIDATE_MODEL}


async def test_a_candidate_on_another_upstream_and_a_gemini_path(
    sidecar_factory: SidecarFactory, simulator: RunningSimulator, records: RecordingSink
) -> None:
    other = Simulator()
    runner = web.AppRunner(other.build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        experiments = [
            {
                "name": "to-vllm",
                "match": {"model": "gpt-4o", "upstream": "openai"},
                "control": {"weight": 0},
                "candidates": [{"model": "gpt-4o-mini", "upstream": "vllm", "weight": 100}],
            },
            {
                "name": "flash",
                "match": {"model": "gemini-2.0-flash"},
                "control": {"weight": 0},
                "candidates": [{"model": "gemini-2.5-flash", "weight": 100}],
            },
        ]
        sidecar = await sidecar_factory(
            {
                "upstreams": {
                    "vllm": {"url": f"http://{host}:{port}", "path_prefix": "/vllm"},
                },
                "experiments": experiments,
            }
        )
        status, body, _ = await post(
            sidecar.proxy_url + "/v1/chat/completions", {"model": "gpt-4o", "messages": QUESTION}
        )
        assert status == 200
        assert orjson.loads(body)["model"] == "gpt-4o-mini-2024-07-18"
        assert other.received[-1].path_qs == "/v1/chat/completions"
        gemini = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
        status, body, _ = await post(
            sidecar.proxy_url + "/v1beta/models/gemini-2.0-flash:generateContent", gemini
        )
        assert status == 200
        assert (
            simulator.sim.received[-1].path_qs == "/v1beta/models/gemini-2.5-flash:generateContent"
        )
        done = await records.wait_for(2)
        assert [(r.upstream, r.variant, r.request.request_model) for r in done] == [
            ("vllm", "candidate", "gpt-4o-mini"),
            ("gemini", "candidate", "gemini-2.5-flash"),
        ]
    finally:
        await runner.cleanup()


async def test_calls_outside_the_experiment_are_untouched(
    sidecar_factory: SidecarFactory, sdk: SDKClients, records: RecordingSink
) -> None:
    sidecar = await sidecar_factory({"experiments": [split(0, 100)]})
    client = sdk.openai(sidecar.proxy_url)
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert answer.model == "gpt-4o-mini-2024-07-18"
    (record,) = await records.wait_for(1)
    assert (record.experiment, record.variant) == ("", "")
