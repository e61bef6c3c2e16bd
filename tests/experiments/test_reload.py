"""Config reload: a weight change under load drops no call; an invalid file keeps the old config;
SIGHUP reloads a running `model-sidecar serve`."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from sidecar.app import Sidecar
from sidecar.config.load import load_config
from sidecar.simulate.profiles import ModelProfile
from tests.helpers.experiments import CANDIDATE_MODEL, CONTROL_MODEL, QUESTION, profile, split
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.simulator import RunningSimulator


def write_config(path: Path, simulator: RunningSimulator, **sections: Any) -> None:
    data = {
        "listen": "127.0.0.1:0",
        "admin_listen": "127.0.0.1:0",
        "upstreams": {name: {"url": simulator.url} for name in ("openai", "anthropic", "gemini")},
        **sections,
    }
    path.write_text(yaml.safe_dump(data))


@pytest.fixture
async def reloading(
    simulator: RunningSimulator, records: RecordingSink, tmp_path: Path
) -> AsyncIterator[tuple[Sidecar, Path]]:
    """A sidecar that reloads its config file (polled every 50 ms), and the file."""
    path = tmp_path / "sidecar.yaml"
    write_config(path, simulator, experiments=[split(100, 0)])
    sidecar = Sidecar(
        load_config(path),
        extra_sinks=[records],
        environ={},
        config_loader=lambda: load_config(path),
        config_file=path,
        reload_interval=0.05,
    )
    await sidecar.start()
    yield sidecar, path
    await sidecar.stop()


async def status(sidecar: Sidecar) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(sidecar.admin_url + "/status") as r:
        body: dict[str, Any] = await r.json()
    return body


async def test_a_weight_change_under_load_drops_no_call(
    reloading: tuple[Sidecar, Path],
    simulator: RunningSimulator,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    records: RecordingSink,
) -> None:
    models[CONTROL_MODEL] = profile(CONTROL_MODEL, ttft_s=0.02)
    models[CANDIDATE_MODEL] = profile(CANDIDATE_MODEL, ttft_s=0.02)
    sidecar, path = reloading
    client = sdk.openai(sidecar.proxy_url)
    answers: list[str] = []
    stop = asyncio.Event()

    async def worker() -> None:
        while not stop.is_set():
            answer = await client.chat.completions.create(model=CONTROL_MODEL, messages=QUESTION)
            answers.append(answer.model)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    try:
        async with asyncio.timeout(10):
            while len(answers) < 40:
                await asyncio.sleep(0.01)
            write_config(path, simulator, experiments=[split(0, 100)])
            while answers[-8:].count(CANDIDATE_MODEL) < 8:
                await asyncio.sleep(0.01)
    finally:
        stop.set()
    await asyncio.gather(*workers)  # any failed call raises here
    switched = answers.index(CANDIDATE_MODEL)
    assert set(answers[:switched]) == {CONTROL_MODEL}
    # Calls already under way finish on the old config: at most one per worker after the switch.
    assert answers[switched:].count(CONTROL_MODEL) <= 8
    done = await records.wait_for(len(answers))
    assert all(record.outcome == "ok" for record in done)
    reloads = (await status(sidecar))["config_reloads"]
    assert reloads["count"] == 1 and reloads["last_errors"] == []


async def test_an_invalid_file_is_rejected_and_the_old_config_keeps_serving(
    reloading: tuple[Sidecar, Path],
    simulator: RunningSimulator,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sidecar, path = reloading
    bad = split(70, 10)
    bad["candidates"][0]["upstream"] = "nowhere"
    write_config(path, simulator, experiments=[bad], limits={"max_request_body_bytes": -1})
    with caplog.at_level(logging.ERROR, logger="sidecar.app"):
        assert sidecar.reload_now() is False
    errors = (await status(sidecar))["config_reloads"]["last_errors"]
    # Every error at once, in the order of the file: the cross-checks of the experiments are
    # not hidden behind the error in `limits`.
    assert len(errors) == 3, errors
    assert "weights sum to 80" in errors[0] and "'nowhere' is not one of" in errors[1]
    assert "limits.max_request_body_bytes" in errors[2]
    # Fix that one: the two experiment errors remain.
    write_config(path, simulator, experiments=[bad])
    with caplog.at_level(logging.ERROR, logger="sidecar.app"):
        assert sidecar.reload_now() is False
    errors = (await status(sidecar))["config_reloads"]["last_errors"]
    assert len(errors) == 2
    assert "weights sum to 80" in errors[0] and "'nowhere' is not one of" in errors[1]
    assert "config reload rejected: the old config keeps serving (2 error(s))" in caplog.text
    assert "weights sum to 80" in caplog.text
    client = sdk.openai(sidecar.proxy_url)
    answers = {
        (await client.chat.completions.create(model=CONTROL_MODEL, messages=QUESTION)).model
        for _ in range(10)
    }
    assert answers == {CONTROL_MODEL}
    assert (await status(sidecar))["experiments"]["exp"]["weights"] == {
        "control": 100.0,
        "candidate": 0.0,
    }


async def test_sections_that_need_a_restart_are_kept(
    reloading: tuple[Sidecar, Path],
    simulator: RunningSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sidecar, path = reloading
    before = sidecar.config.telemetry
    write_config(path, simulator, telemetry={"max_model_labels": 5}, retries={"enabled": True})
    with caplog.at_level(logging.WARNING, logger="sidecar.app"):
        assert sidecar.reload_now()
    assert "telemetry change(s) need a restart and were not applied" in caplog.text
    assert sidecar.config.telemetry == before
    assert sidecar.proxy is not None and sidecar.proxy.retry_policy is not None
    assert (await status(sidecar))["experiments"] == {}


async def test_sighup_reloads_a_running_serve(
    simulator: RunningSimulator, models: dict[str, ModelProfile], tmp_path: Path
) -> None:
    path = tmp_path / "sidecar.yaml"
    write_config(path, simulator)
    process = subprocess.Popen(
        [sys.executable, "-m", "sidecar.cli", "serve", "--config", str(path)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MODEL_SIDECAR_CONFIG": ""},
    )
    try:
        assert process.stderr is not None
        match = None
        while match is None:
            line = await asyncio.to_thread(process.stderr.readline)
            assert line, "serve exited before listening"
            match = re.search(r'"admin":"(http://[^"]+)"', line)
        admin = match.group(1)
        write_config(path, simulator, experiments=[split(50, 50)])
        process.send_signal(signal.SIGHUP)
        async with aiohttp.ClientSession() as http:
            # Within 3 s: the file watcher of `serve` polls every 5 s, so this is SIGHUP.
            for _ in range(60):
                async with http.get(admin + "/status") as response:
                    experiments = (await response.json())["experiments"]
                if experiments:
                    break
                await asyncio.sleep(0.05)
        assert experiments["exp"]["weights"] == {"control": 50.0, "candidate": 50.0}
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 10)
    assert process.returncode == 0
