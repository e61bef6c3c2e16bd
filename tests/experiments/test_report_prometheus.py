"""`model-sidecar report --prometheus` against a real Prometheus that scraped a real sidecar."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import openai
import pytest

from sidecar.simulate.profiles import ModelProfile
from tests.helpers.experiments import CANDIDATE_MODEL, CONTROL_MODEL, QUESTION, profile, split
from tests.helpers.prometheus import running_prometheus
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory

CALLS = "sum(model_sidecar_requests_total)"


async def report(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sidecar.cli", "report", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def wave(base: str, client: openai.AsyncOpenAI, count: int) -> list[str]:
    """`count` calls for the control model with a fixed key each; feedback on every one."""
    outcomes = {CONTROL_MODEL: "accepted", CANDIDATE_MODEL: "hallucination"}
    answered = []
    async with aiohttp.ClientSession() as http:
        for index in range(count):
            raw = await client.chat.completions.with_raw_response.create(
                model=CONTROL_MODEL, messages=QUESTION, extra_headers={"x-user": f"u{index % 8}"}
            )
            model = raw.parse().model
            answered.append(model)
            body = {"request_id": raw.headers["x-model-sidecar-request-id"]}
            body["outcome"] = outcomes[model]
            async with http.post(base + "/_sidecar/feedback", json=body) as response:
                assert response.status == 200
    return answered


@pytest.mark.slow
async def test_report_from_prometheus_prints_a_row_per_model_and_arm(
    sidecar_factory: SidecarFactory,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    tmp_path: Path,
) -> None:
    models[CANDIDATE_MODEL] = profile(CANDIDATE_MODEL, error_rate=0.0, ttft_s=0.02)
    sidecar = await sidecar_factory({"experiments": [split(50, 50, key_header="x-user")]})
    client = sdk.openai(sidecar.proxy_url)
    admin = urlsplit(sidecar.admin_url).netloc
    async with running_prometheus([admin], tmp_path / "prometheus") as prometheus:
        # A first wave creates every series; the second one is what increase() sees in full.
        first = await wave(sidecar.proxy_url, client, 16)
        await prometheus.wait_for_series(f"{CALLS} >= {len(first)}", timeout=30)
        second = await wave(sidecar.proxy_url, client, 32)
        await prometheus.wait_for_series(f"{CALLS} >= {len(first) + len(second)}", timeout=30)
        await asyncio.sleep(1.5)  # one more scrape, so the window holds both ends
        rows = json.loads(await report("--prometheus", prometheus.url, "--window", "5m",
                                       "--format", "json"))  # fmt: skip
        table = await report("--prometheus", prometheus.url, "--window", "5m")
        markdown = await report("--prometheus", prometheus.url, "--format", "markdown")
    keys = [(row["model"], row["experiment"], row["variant"]) for row in rows]
    assert keys == [(CANDIDATE_MODEL, "exp", "candidate"), (CONTROL_MODEL, "exp", "control")]
    by_variant = {row["variant"]: row for row in rows}
    for variant, model in (("control", CONTROL_MODEL), ("candidate", CANDIDATE_MODEL)):
        row = by_variant[variant]
        # Series younger than the window count in full: exactly the calls sent.
        assert row["calls"] == (first + second).count(model), (variant, row)
        assert row["error_ratio"] == 0.0
        assert 0 < row["p50_seconds"] <= row["p95_seconds"] < 2
    assert by_variant["candidate"]["feedback"]["hallucination"] > 0
    assert by_variant["candidate"]["hallucinations_per_1k"] > 900
    assert by_variant["control"]["feedback"]["accepted"] > 0
    assert by_variant["control"]["hallucinations_per_1k"] == 0
    control_line = next(line for line in table.splitlines() if CONTROL_MODEL in line)
    assert "control" in control_line and "0.0%" in control_line
    assert "Per model and arm, from" in table and "over the last 5m" in table
    assert f"| {CANDIDATE_MODEL} | exp | candidate |" in markdown
    assert markdown.splitlines()[2].startswith("| model | experiment | variant | calls |")
