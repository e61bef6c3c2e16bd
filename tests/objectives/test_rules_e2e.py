"""End to end: a real Prometheus scrapes a real sidecar (attribution, two SLOs and two budgets
configured) in front of the simulator, whose quota runs out under steady traffic. Every rule
(the shipped ones and those `slo-rules` generates) loads and evaluates, every recording rule
of the quota, SLO and budget groups returns series, and ProviderQuotaExhaustionSoon fires
before the first 429 reaches the app."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest
import yaml

from alerts import Timing, rule_file
from alerts.generate import REPO_ROOT
from sidecar.config.load import load_config
from sidecar.objectives.command import groups_for
from sidecar.objectives.rulefile import rule_file as generated_rule_file
from sidecar.simulate.quota import Quotas
from sidecar.simulate.simulator import Simulator
from sidecar.tools.report_teams import by_team, fetch_team_samples
from tests.helpers.prometheus import PrometheusServer, running_prometheus
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import Sidecars
from tests.helpers.simulator import running_simulator

OBJECTIVES = REPO_ROOT / "alerts" / "tests" / "objectives" / "config.yaml"
QUOTA = 150  # requests per window, for every model
QUOTA_MODEL = "gpt-4o-mini"
MESSAGES: list[Any] = [{"role": "user", "content": "Which team is paying for this?"}]


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(item["value"][1])) for item in result)


async def missing_records(prometheus: PrometheusServer, groups: list[dict[str, Any]]) -> list[str]:
    names = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    return [name for name in sorted(names) if not finite(await prometheus.query(name))]


async def quota_alert_firing(prometheus: PrometheusServer) -> bool:
    alerts = (await prometheus.api("alerts"))["alerts"]
    return any(
        alert["labels"]["alertname"] == "ProviderQuotaExhaustionSoon"
        and alert["labels"].get("gen_ai_request_model") == QUOTA_MODEL
        and alert["labels"].get("kind") == "requests"
        and alert["state"] == "firing"
        for alert in alerts
    )


async def objective_traffic(client: Any) -> int:
    """Calls of gpt-4o from three teams (one unknown), streamed and not."""
    calls = 0
    for team in ("search", "ads", "growth") * 6:
        headers = {"x-team": team}
        await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers=headers
        )
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, extra_headers=headers
        )
        async for _ in stream:
            pass
        calls += 2
    return calls


@pytest.mark.slow
async def test_every_generated_rule_evaluates_and_the_quota_alert_comes_before_the_429(
    sdk: SDKClients, tmp_path: Path
) -> None:
    objectives = yaml.safe_load(OBJECTIVES.read_text())
    shipped = tmp_path / "rules.yaml"
    shipped.write_text(rule_file({}, timing=Timing(window="30s", for_override="1s")))
    generated = tmp_path / "objectives.yaml"
    generated.write_text(generated_rule_file(groups_for(load_config(OBJECTIVES))))
    sim = Simulator(fastest=True, quotas=Quotas(requests=QUOTA, window_s=3600))
    async with running_simulator(sim) as running:
        sidecars = Sidecars(running.url, [])
        try:
            sidecar = await sidecars.start(objectives)
            admin = urlsplit(sidecar.admin_url).netloc
            async with running_prometheus(
                [admin], tmp_path / "prometheus", [shipped, generated]
            ) as prometheus:
                await prometheus.wait_for_series('up{job="model-sidecar"} == 1')
                client = sdk.openai(sidecar.proxy_url)
                calls = await objective_traffic(client)
                await prometheus.wait_for_series(
                    f"sum(model_sidecar_attribution_requests_total) >= {calls}"
                )

                # Steady traffic to one model until the provider's quota runs out.
                alert_at: float | None = None
                first_429_at: float | None = None
                deadline = time.monotonic() + 90
                while first_429_at is None and time.monotonic() < deadline:
                    try:
                        await client.chat.completions.create(model=QUOTA_MODEL, messages=MESSAGES)
                    except openai.RateLimitError:
                        first_429_at = time.monotonic()
                    if alert_at is None and await quota_alert_firing(prometheus):
                        alert_at = time.monotonic()
                    await asyncio.sleep(0.15)
                assert first_429_at is not None, "the quota never ran out"
                assert alert_at is not None, (
                    "ProviderQuotaExhaustionSoon did not fire before the 429"
                )
                assert alert_at < first_429_at
                print(f"quota alert firing {first_429_at - alert_at:.1f} s before the first 429")

                shipped_groups = yaml.safe_load(shipped.read_text())["groups"]
                checked = [
                    group for group in shipped_groups if group["name"] == "model-sidecar.quota"
                ] + yaml.safe_load(generated.read_text())["groups"]
                loop = asyncio.get_running_loop()
                settle = loop.time() + 30
                missing = await missing_records(prometheus, checked)
                while missing and loop.time() < settle:
                    await asyncio.sleep(1)
                    missing = await missing_records(prometheus, checked)
                rules = (await prometheus.api("rules"))["groups"]
                # `report --by team --prometheus`: the same teams, over the last 10 minutes,
                # once every call (the quota's and the 429) was scraped.
                await prometheus.wait_for_series(
                    'sum(model_sidecar_attribution_requests_total{attribution="none"})'
                    f" >= {QUOTA + 1}"
                )
                teams_report = by_team(
                    await asyncio.to_thread(fetch_team_samples, prometheus.url, "10m")
                )
                budget_by_team = await prometheus.query(
                    "attribution:model_sidecar_attribution_cost_usd:rate1h"
                )
        finally:
            await sidecars.stop_all()
    # Every rule of both files loaded and evaluates without error.
    unhealthy = [
        (rule["name"], rule.get("lastError"))
        for group in rules
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]
    assert unhealthy == []
    loaded = sum(len(group["rules"]) for group in rules)
    expected = sum(
        len(group["rules"])
        for path in (shipped, generated)
        for group in yaml.safe_load(path.read_text())["groups"]
    )
    assert loaded == expected
    assert missing == [], f"recording rules without data: {missing}"
    # The unknown team is `other`, calls without the header `none`; nothing else is a label.
    teams = {item["metric"]["attribution"] for item in budget_by_team}
    assert teams == {"search", "ads", "other", "none"}
    calls = {item.team: item.calls for item in teams_report}
    assert calls["search"] == calls["ads"] == calls["other"] == 12
    assert calls["none"] == QUOTA + 1  # the quota's calls and the first 429
