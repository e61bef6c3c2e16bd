"""End to end: a real Prometheus evaluates a test copy of the rules (10 s windows, `for: 2s`,
p95 threshold 0.5 s) while scraping a real sidecar. The simulated provider turns slow: the
tail-latency alert for that model goes pending/firing in /api/v1/alerts; the provider
recovers: the alert clears. Every rule evaluates without error against the real series."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from alerts import Timing, rule_file
from sidecar.app import Sidecar
from tests.helpers.prometheus import PrometheusServer, running_prometheus
from tests.helpers.sdk import SDKClients

MODEL = "gpt-4o-mini"
SLOW = {"x-sim-stall-before-headers-ms": "1500"}
THRESHOLD = 0.5
WORKERS = 4


class Traffic:
    """Calls to MODEL through the sidecar from a few workers; slow while `slow` is set."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.slow = asyncio.Event()
        self.calls = 0

    async def worker(self) -> None:
        while True:
            headers = SLOW if self.slow.is_set() else {}
            await self.client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "Is the provider slow today?"}],
                extra_headers=headers,
            )
            self.calls += 1
            await asyncio.sleep(0.05)


async def tail_latency_alerts(prometheus: PrometheusServer) -> list[dict[str, Any]]:
    data = await prometheus.api("alerts")
    return [
        alert
        for alert in data["alerts"]
        if alert["labels"]["alertname"] == "ModelTailLatencyHigh"
        and alert["labels"].get("gen_ai_request_model") == MODEL
    ]


async def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} not seen within {timeout} s")


@pytest.mark.slow
async def test_tail_latency_alert_fires_when_the_provider_is_slow_and_clears_after(
    sidecar: Sidecar, sdk: SDKClients, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        rule_file(
            {"latency_p95_seconds": THRESHOLD}, timing=Timing(window="10s", for_override="2s")
        )
    )
    traffic = Traffic(sdk.openai(sidecar.proxy_url))
    admin = urlsplit(sidecar.admin_url).netloc
    async with running_prometheus([admin], tmp_path / "prometheus", [rules]) as prometheus:
        await prometheus.wait_for_series('up{job="model-sidecar"} == 1')
        workers = [asyncio.create_task(traffic.worker()) for _ in range(WORKERS)]
        try:
            # Fast calls first: the model's p95 is real and under the threshold, no alert.
            p95 = "model:gen_ai_client_operation_duration_seconds:p95_rate10s"
            p95 += f'{{gen_ai_request_model="{MODEL}"}}'
            fast = await prometheus.wait_for_series(f"{p95} < {THRESHOLD}")
            assert float(fast[0]["value"][1]) > 0
            assert await tail_latency_alerts(prometheus) == []

            traffic.slow.set()
            alerts = await wait_until(
                lambda: tail_latency_alerts(prometheus), 30, "ModelTailLatencyHigh pending/firing"
            )
            assert len(alerts) == 1
            alert = alerts[0]
            assert alert["state"] in ("pending", "firing")
            assert alert["labels"]["quantile"] == "0.95"
            assert alert["labels"]["gen_ai_provider_name"] == "openai"
            assert alert["labels"]["severity"] == "warning"
            assert THRESHOLD < float(alert["value"]) < 600
            annotations = alert["annotations"]
            assert f"p95 of calls to {MODEL} (openai) over 10s is " in annotations["description"]
            assert "above the 0.5 s threshold" in annotations["description"]
            assert annotations["runbook_url"].endswith("runbooks.md#modeltaillatencyhigh")

            # Pending becomes firing once the condition held for `for:` (2 s here).
            async def firing() -> bool:
                return [a["state"] for a in await tail_latency_alerts(prometheus)] == ["firing"]

            await wait_until(firing, 20, "ModelTailLatencyHigh firing")

            traffic.slow.clear()

            async def cleared() -> bool:
                return await tail_latency_alerts(prometheus) == []

            await wait_until(cleared, 30, "ModelTailLatencyHigh clearing")
        finally:
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        # Every rule (incl. those whose metrics the sidecar does not export yet) evaluated
        # against the real series without an error.
        groups = (await prometheus.api("rules"))["groups"]
        unhealthy = [
            (rule["name"], rule.get("lastError"))
            for group in groups
            for rule in group["rules"]
            if rule["health"] != "ok"
        ]
        assert sum(len(group["rules"]) for group in groups) >= 40
        assert unhealthy == []
    assert traffic.calls > 0
