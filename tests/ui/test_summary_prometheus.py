"""/api/summary against a real Prometheus that scraped the same sidecar's /metrics: since start,
the numbers `model-sidecar report --prometheus` computes; over a window, what PromQL's own
sums and histogram_quantile() give for the same window."""

from __future__ import annotations

import asyncio
import math
import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from sidecar.tools.demo import DEMO_EXPERIMENT, DEMO_TARGETS, DEMO_UPSTREAMS
from sidecar.tools.report import ARM_GROUP, DURATION, REQUESTS, TTFC, aggregate
from sidecar.tools.report_prometheus import fetch_samples
from sidecar.tools.traffic import TrafficGenerator
from sidecar.ui.summary import rows
from tests.helpers.prometheus import PrometheusServer, running_prometheus
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

INFERENCE = '{gen_ai_operation_name!="other"}'
BY = ", ".join(ARM_GROUP)
# Compared exactly (up to float summation order): counts, sums and interpolated quantiles.
NUMBERS = (
    "calls", "errors", "cost_usd", "p50_seconds", "p95_seconds", "p95_ttft_seconds",
    "cost_per_10k_usd", "error_ratio", "retry_ratio", "low_confidence_ratio", "repeatability",
)  # fmt: skip
QUIET_SECONDS = 4.0


async def summary(admin: str, window: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(admin + "/api/summary", params={"window": window}) as response,
    ):
        assert response.status == 200, await response.text()
        document: dict[str, Any] = await response.json()
        return document


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def keyed(items: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["model"], r["experiment"], r["variant"]): r for r in items}


async def scraped_all(prometheus: PrometheusServer, admin: str) -> float:
    """Wait until Prometheus holds every call the sidecar counted; that count."""
    calls = sum(row["calls"] for row in (await summary(admin, "start"))["rows"])
    await prometheus.wait_for_series(f"sum(model_sidecar_requests_total{INFERENCE}) == {calls}")
    return calls


def window_delta(series: str, window: str, extra: str = "") -> str:
    """PromQL: what each series counted in the last `window`; a series born since, in full."""
    selector = series + INFERENCE
    labels = BY + (", " + extra if extra else "")
    return f"sum by ({labels}) (({selector} - {selector} offset {window}) or {selector})"


def by_arm(result: list[dict[str, Any]]) -> dict[tuple[str, str, str], float]:
    """A query's values by (model, experiment, variant); NaN (no calls) left out."""
    values = {}
    for item in result:
        labels = item["metric"]
        key = (
            labels.get(ARM_GROUP[0], ""),
            labels.get(ARM_GROUP[1], ""),
            labels.get(ARM_GROUP[2], ""),
        )
        value = float(item["value"][1])
        if not math.isnan(value):
            values[key] = value
    return values


@pytest.mark.slow
async def test_summary_numbers_are_what_prometheus_computes_for_the_same_window(
    sidecar_factory: SidecarFactory, simulator: RunningSimulator, tmp_path: Path
) -> None:
    sidecar = await sidecar_factory(
        {
            "upstreams": {name: {"url": simulator.url} for name in DEMO_UPSTREAMS},
            "experiments": [DEMO_EXPERIMENT],
            "ui": {"snapshot_interval_seconds": 1},
        }
    )
    admin = sidecar.admin_url
    traffic = TrafficGenerator(sidecar.proxy_url, DEMO_TARGETS, rng=random.Random(3))
    try:
        async with running_prometheus([urlsplit(admin).netloc], tmp_path / "prom") as prometheus:
            await traffic.run(3.0, 30.0)
            first = await scraped_all(prometheus, admin)
            # A quiet gap, then more traffic: the window starts inside the gap.
            gap_start = time.time()
            await asyncio.sleep(QUIET_SECONDS)
            await traffic.run(3.0, 30.0)
            total = await scraped_all(prometheus, admin)
            assert total > first > 0
            await asyncio.sleep(1.5)  # one more scrape and reading after the last call

            # Since start: `report --prometheus`'s numbers (series born inside its window
            # count in full), from the same aggregate().
            since_start = await summary(admin, "start")
            samples = await asyncio.to_thread(fetch_samples, prometheus.url, "10m")
            from_prometheus = keyed(rows(aggregate(samples, ARM_GROUP)))
            mine = keyed(since_start["rows"])
            assert set(mine) == set(from_prometheus)
            assert {target.model for target in DEMO_TARGETS} <= {key[0] for key in mine}
            for key, row in mine.items():
                for name in NUMBERS:
                    assert close(row[name], from_prometheus[key][name]), (key, name)

            # A window that starts in the gap: PromQL's sums and histogram_quantile().
            now = time.time()
            seconds = math.ceil(now - (gap_start + QUIET_SECONDS / 2))
            window = f"{seconds}s"
            windowed = await summary(admin, window)
            assert windowed["window"]["since_start"] is False
            mine = keyed(windowed["rows"])
            assert 0 < sum(row["calls"] for row in mine.values()) == total - first
            await compare_window(prometheus, mine, window, now)
    finally:
        await traffic.close()


async def compare_window(
    prometheus: PrometheusServer,
    mine: dict[tuple[str, str, str], dict[str, Any]],
    window: str,
    at: float,
) -> None:
    calls = by_arm(await prometheus.query(window_delta(REQUESTS, window), at))
    calls = {key: value for key, value in calls.items() if value > 0}
    assert set(calls) == set(mine)
    cost = by_arm(await prometheus.query(window_delta("model_sidecar_cost_usd_total", window), at))
    for name, series in (
        ("p50_seconds", (0.5, DURATION)),
        ("p95_seconds", (0.95, DURATION)),
        ("p95_ttft_seconds", (0.95, TTFC)),
    ):
        q, metric = series
        expr = f"histogram_quantile({q}, {window_delta(metric + '_bucket', window, 'le')})"
        quantiles = by_arm(await prometheus.query(expr, at))
        for key, row in mine.items():
            assert close(row[name], quantiles.get(key)), (key, name, row[name], quantiles.get(key))
    for key, row in mine.items():
        assert row["calls"] == calls[key], key
        assert close(row["cost_usd"], cost.get(key, 0.0)), key
