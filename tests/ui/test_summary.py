"""The comparison page's parts without a browser: windows, the bounded history, the served page
and its headers, /api/summary through a real sidecar, the stop-loss gates, and what stays off."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from sidecar.admin.auth import is_control_request
from sidecar.app import Sidecar
from sidecar.simulate.profiles import ModelProfile
from sidecar.ui.history import History, ring_sizes
from sidecar.ui.series import delta
from sidecar.ui.summary import START, Summary, WindowError, baseline, parse_window
from tests.helpers.experiments import (
    CANDIDATE_MODEL,
    CONTROL_MODEL,
    QUESTION,
    profile,
    split,
)
from tests.helpers.sdk import API_KEY, SDKClients
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

KEY = ("model_sidecar_requests_total", (("gen_ai_request_model", "m"),))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def history(interval: float = 5.0) -> tuple[History, Clock, list[float]]:
    """A History over a counter the test sets, on a clock the test moves."""
    clock = Clock()
    value = [0.0]
    made = History(lambda: {KEY: value[0]}, interval, clock=clock, wall_clock=clock)
    return made, clock, value


def test_windows_are_the_selector_s_or_a_duration_up_to_an_hour() -> None:
    assert parse_window(None).seconds == 300
    assert parse_window("1h").seconds == 3600
    assert parse_window("90s").seconds == 90
    assert parse_window(START).seconds is None
    for bad in ("", "5", "2h", "-5m", "5 m", "0s", "1d"):
        with pytest.raises(WindowError, match="window"):
            parse_window(bad or " ")


def test_the_history_is_bounded_and_readings_share_their_series() -> None:
    made, clock, value = history()
    recent, hourly = ring_sizes(5.0)
    assert (recent, hourly) == (121, 61) == made.capacity
    for _ in range(2000):  # almost three hours of readings
        value[0] += 1
        made.take()
        clock.now += 5.0
    readings = made.recent().readings
    assert len(readings) == recent and len(made.hourly().readings) == hourly
    assert made.recent().wrapped and made.hourly().wrapped
    assert readings[-1].keys is readings[0].keys  # one list of series for all of them
    assert made.hourly().readings[1].at_monotonic - made.hourly().readings[0].at_monotonic == 60
    assert ring_sizes(1.0)[0] == 601


def test_a_window_counts_from_the_newest_reading_at_or_before_its_start() -> None:
    made, clock, value = history()
    for _ in range(10):  # 50 s of readings, one call every 5 s
        made.take()
        value[0] += 1
        clock.now += 5.0
    now = made.read_now()
    # Younger than the window: everything since start.
    assert baseline(made, now, 300) is None
    base = baseline(made, now, 22)
    assert base is not None and now.at_monotonic - base.at_monotonic == 25
    assert delta(now.as_dict(), base.as_dict())[KEY] == 5
    # Past the recent ring's ten minutes, the hourly ring answers (to the minute).
    for _ in range(200):
        made.take()
        value[0] += 1
        clock.now += 5.0
    now = made.read_now()
    base = baseline(made, now, 900)
    assert base is not None and 900 <= now.at_monotonic - base.at_monotonic < 960


def test_a_series_that_went_down_counts_from_zero() -> None:
    assert delta({KEY: 3.0}, {KEY: 10.0}) == {KEY: 3.0}
    assert delta({KEY: 12.0}, {}) == {KEY: 12.0}


def test_the_page_and_its_summary_are_the_only_new_reads() -> None:
    assert not is_control_request("GET", "/")
    assert not is_control_request("GET", "/api/summary")
    assert is_control_request("POST", "/api/summary")
    assert is_control_request("POST", "/")
    assert is_control_request("GET", "/api/other")


async def get(url: str, **kwargs: Any) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as http, http.get(url, **kwargs) as response:
        return response.status, dict(response.headers), await response.text()


async def test_the_page_is_one_document_that_asks_for_nothing_elsewhere(
    sidecar: Sidecar,
) -> None:
    status, headers, html = await get(sidecar.admin_url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    # Style and script are inline (their hashes are in the policy), nothing is loaded.
    assert "/*STYLE*/" not in html and "/*SCRIPT*/" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"@import|url\(", html)
    assert "<script src" not in html and '<link rel="stylesheet"' not in html


async def test_summary_counts_the_window_s_calls_and_never_shows_a_key_or_a_prompt(
    sidecar_factory: SidecarFactory, sdk: SDKClients, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-admin-token\n")
    sidecar = await sidecar_factory({"admin_token_file": str(token)})
    client = sdk.openai(sidecar.proxy_url)
    for _ in range(3):
        await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    url = sidecar.admin_url + "/api/summary"
    status, headers, body = await get(url, params={"window": "5m"})
    assert status == 200 and headers["Cache-Control"] == "no-store"
    document = json.loads(body)
    (row,) = document["rows"]
    assert (row["model"], row["calls"]) == ("gpt-4o-mini", 3)
    assert row["p95_seconds"] > 0 and row["cost_per_10k_usd"] > 0
    assert document["window"] | {"from_unix": 0, "seconds": 0} == {
        "name": "5m",
        "requested_seconds": 300,
        "from_unix": 0,
        "seconds": 0,
        "since_start": True,
    }
    assert document["sidecar"]["admin_control"] == "token"
    assert document["history"]["recent_capacity"] == 121
    for secret in (API_KEY, "s3cret-admin-token", QUESTION[0]["content"], "http://"):
        assert secret not in body
    status, _, body = await get(url, params={"window": "3h"})
    assert status == 400 and "use 1h or start" in body
    # Read-only: anything but a read needs the token.
    async with aiohttp.ClientSession() as http, http.post(url) as response:
        assert response.status == 401


async def test_with_the_page_off_there_is_no_page_and_no_history(
    sidecar_factory: SidecarFactory,
) -> None:
    sidecar = await sidecar_factory({"ui": {"enabled": False}})
    assert sidecar.page is None
    for path in ("/", "/api/summary"):
        status, _, _ = await get(sidecar.admin_url + path)
        assert status == 404


async def gates_of(sidecar: Sidecar) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(sidecar.admin_url + "/api/summary") as response,
    ):
        document = await response.json()
    gates: list[dict[str, Any]] = document["experiments"]["exp"]["stop_loss_gates"]
    return gates


async def test_stop_loss_gates_show_each_limit_against_its_value_now(
    sidecar_factory: SidecarFactory,
    sdk: SDKClients,
    simulator: RunningSimulator,
) -> None:
    models: dict[str, ModelProfile] = simulator.sim.profiles
    models[CONTROL_MODEL] = profile(CONTROL_MODEL)
    models[CANDIDATE_MODEL] = profile(CANDIDATE_MODEL)
    stop_loss = {"min_calls": 4, "window_calls": 50, "max_error_ratio_increase": 0.2}
    sidecar = await sidecar_factory({"experiments": [split(50, 50, stop_loss=stop_loss)]})
    client = sdk.openai(sidecar.proxy_url)
    gates = await gates_of(sidecar)
    assert [(g["gate"], g["state"]) for g in gates] == [
        ("latency", "not judged"),
        ("errors", "not judged"),
    ]
    assert gates[1]["limit"] == 0.2 and gates[1]["unit"] == "difference"
    for _ in range(30):
        await client.chat.completions.create(model=CONTROL_MODEL, messages=QUESTION)
    gates = await gates_of(sidecar)
    assert {g["state"] for g in gates} == {"holds"}, gates
    assert gates[1]["value"] == 0.0 and gates[1]["calls"] >= 4
    # The candidate starts failing: the error gate is crossed, the stop-loss rolls it back.
    models[CANDIDATE_MODEL] = profile(CANDIDATE_MODEL, error_rate=1.0)
    for _ in range(30):
        with contextlib.suppress(openai.APIStatusError):
            await client.chat.completions.create(model=CONTROL_MODEL, messages=QUESTION)
    gates = await gates_of(sidecar)
    assert {g["state"] for g in gates} == {"rolled back"}, gates
    assert gates[1]["value"] > 0.2


def test_the_page_s_files_ship_in_the_wheel() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    shipped = set(pyproject["tool"]["setuptools"]["package-data"]["sidecar.ui"])
    files = {path.name for path in (root / "sidecar" / "ui").iterdir() if path.suffix != ".py"}
    assert shipped == files - {"__pycache__"}


def test_charts_use_the_recent_ring_then_one_point_a_minute() -> None:
    made, clock, value = history()
    summary = Summary(made)
    for _ in range(60):  # five minutes, one call a reading
        made.take()
        value[0] += 1
        clock.now += 5.0
    charts = summary.compute(parse_window("5m"))["charts"]
    assert (charts["step_seconds"], charts["point_covers_seconds"]) == (5.0, 30.0)
    (series,) = charts["series"]
    assert series["model"] == "m" and series["calls"][-1] == 6  # the 30 s before the point
    for _ in range(400):  # past the recent ring's ten minutes
        made.take()
        value[0] += 1
        clock.now += 5.0
    charts = summary.compute(parse_window("1h"))["charts"]
    assert (charts["step_seconds"], charts["point_covers_seconds"]) == (60.0, 60.0)
    assert charts["series"][0]["calls"][-1] == 12 and len(charts["times_unix"]) <= 61
