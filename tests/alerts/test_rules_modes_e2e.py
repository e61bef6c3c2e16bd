"""The alert rules in each convention mode: a real Prometheus evaluates them while it scrapes a
real sidecar carrying every kind of call. Every rule is healthy, every recording rule records
data, and every series an alert expression reads returns data (of the names a measurement has
in different generations, the one the mode exports)."""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from alerts import Timing, rule_file
from tests.helpers.prometheus import PrometheusServer, running_prometheus
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.semconv import MODES, mode_environ, selector_groups
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator
from tests.helpers.traffic import EXPERIMENTS, send_wave

# The sidecar's own series and recorded series, each with its matchers when it has them.
SERIES = re.compile(
    r"\b(?:[a-z_]+:[a-z0-9_]+:[a-z0-9_]+|gen_ai_client_[a-z0-9_]+|model_sidecar_[a-z0-9_]+)"
    r"(?:\{[^{}]*\})?"
)
CALLS = 'sum(model_sidecar_requests_total{variant!="shadow"})'
SETTLE_SECONDS = 20.0


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(item["value"][1])) for item in result)


async def missing(prometheus: PrometheusServer, rules: Path) -> list[str]:
    """Recording rules without data, and series of alert expressions without data."""
    failures = []
    for group in yaml.safe_load(rules.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                if not finite(await prometheus.query(rule["record"])):
                    failures.append(f"record {rule['record']}: no data")
                continue
            found = [match.group(0) for match in SERIES.finditer(rule["expr"])]
            for selectors in selector_groups(found):
                results = [await prometheus.query(selector) for selector in selectors]
                if not any(map(finite, results)):
                    failures.append(f"alert {rule['alert']}: no data: {' or '.join(selectors)}")
    return failures


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
async def test_every_rule_reads_data_in_every_mode(
    mode: str,
    sidecar_factory: SidecarFactory,
    simulator: RunningSimulator,
    sdk: SDKClients,
    records: RecordingSink,
    tmp_path: Path,
) -> None:
    config = {
        "retries": {"enabled": True, "statuses": [503], "backoff_initial_seconds": 0.01},
        "confidence": {"threshold": 0.7},
        "experiments": EXPERIMENTS,
    }
    sidecar = await sidecar_factory(config, environ=mode_environ(mode))
    rules = tmp_path / "rules.yaml"
    rules.write_text(rule_file({}, timing=Timing(window="30s", for_override="1s")))
    admin = urlsplit(sidecar.admin_url).netloc
    async with running_prometheus([admin], tmp_path / "prometheus", [rules]) as prometheus:
        await prometheus.wait_for_series('up{job="model-sidecar"} == 1')
        # Two waves with scrapes between them: rates over the windows see calls arrive.
        calls = await send_wave(sidecar.proxy_url, sdk, simulator)
        await prometheus.wait_for_series(f"{CALLS} >= {calls}", timeout=30)
        calls += await send_wave(sidecar.proxy_url, sdk, simulator)
        await prometheus.wait_for_series(f"{CALLS} >= {calls}", timeout=30)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        failures = await missing(prometheus, rules)
        while failures and loop.time() < deadline:
            await asyncio.sleep(1)
            failures = await missing(prometheus, rules)

        groups = (await prometheus.api("rules"))["groups"]
        unhealthy = [
            (rule["name"], rule.get("lastError"))
            for group in groups
            for rule in group["rules"]
            if rule["health"] != "ok"
        ]
    assert unhealthy == []
    assert sum(len(group["rules"]) for group in groups) >= 40
    assert not failures, "\n".join(failures)
