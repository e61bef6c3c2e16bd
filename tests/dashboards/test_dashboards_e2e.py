"""Every panel query of every dashboard, against a real Prometheus that scraped a real sidecar
carrying every kind of call, in each convention mode: each must parse and return data, and so
must each selector in it (of the names a measurement has in different generations, the one the
mode exports)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from dashboards.generate import OUTPUT_DIRS, REPO_ROOT, SPECS
from sidecar.config.load import load_config
from sidecar.objectives.command import groups_for
from sidecar.objectives.rulefile import rule_file
from tests.helpers.grafana import resolve_variables, selectors, substitute
from tests.helpers.prometheus import PrometheusServer, running_prometheus
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.semconv import MODES, mode_environ, selector_groups
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator
from tests.helpers.traffic import EXPERIMENTS, send_wave

# Calls the app made (shadow copies are calls of their own, counted once their pair is done).
CALLS = 'sum(model_sidecar_requests_total{variant!="shadow"})'
PAIRS = "sum(model_sidecar_shadow_pairs_total)"
PROVIDERS = ["anthropic", "gcp.gemini", "openai"]
# Scrapes are every second; a late rate window may need one more before it has two samples.
SETTLE_SECONDS = 5.0

OBJECTIVES = REPO_ROOT / "alerts" / "tests" / "objectives" / "config.yaml"
SIDECAR_CONFIG: dict[str, Any] = {
    # The sidecar's own retries: only 503, quickly, always within budget.
    "retries": {
        "enabled": True,
        "statuses": [503],
        "backoff_initial_seconds": 0.01,
        "backoff_max_seconds": 0.02,
        "budget_min_retries": 100,
    },
    # gpt-4.1-nano (token probability ~0.5) is low, gpt-4o-mini (~0.95) is not.
    "confidence": {"threshold": 0.7},
    "experiments": EXPERIMENTS,
    # Attribution, SLOs and budgets: the cost-by-team and SLO panels (their rules are loaded).
    **yaml.safe_load(OBJECTIVES.read_text()),
}


def committed_dashboards() -> dict[str, dict[str, Any]]:
    """The dashboards as committed (test_dashboard_json checks they match the generator)."""
    return {name: json.loads((OUTPUT_DIRS[0] / name).read_text()) for name in SPECS}


def finite_series(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The series of an instant-query result whose value is a number (not NaN or ±Inf)."""
    return [s for s in result if math.isfinite(float(s["value"][1]))]


async def wait_for_calls(prometheus: PrometheusServer, total: int, pairs: int) -> None:
    """Until Prometheus has scraped all `total` calls and `pairs` shadow pairs."""
    await prometheus.wait_for_series(f"{CALLS} >= {total}", timeout=30)
    await prometheus.wait_for_series(f"{PAIRS} >= {pairs}", timeout=30)


async def empty_queries(
    dashboards: dict[str, dict[str, Any]], prometheus: PrometheusServer
) -> tuple[list[str], int]:
    """Descriptions of every panel query or selector that returned no finite value; count run."""
    # (where, expressions): one of the expressions must return a finite value.
    checks: list[tuple[str, tuple[str, ...]]] = []
    for file_name, dashboard in dashboards.items():
        values, found = await resolve_variables(dashboard, prometheus.query)
        assert found["job"] == ["model-sidecar"], found
        assert found.get("provider", PROVIDERS) == PROVIDERS, found
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = substitute(target["expr"], values)
                where = f"{file_name} panel {panel['title']!r} query {target['refId']}"
                checks.append((where, (expr,)))
                checks.extend(
                    (f"{where} selector", group) for group in selector_groups(selectors(expr))
                )
    queries = [expr for _, group in checks for expr in group]
    results = dict(
        zip(
            queries,
            await asyncio.gather(*(prometheus.query(q) for q in queries), return_exceptions=True),
            strict=True,
        )
    )
    failures = []
    for where, group in checks:
        errors = [results[q] for q in group if isinstance(results[q], BaseException)]
        if errors:  # e.g. a PromQL parse error
            failures.append(f"{where}: {errors[0]}")
        elif not any(finite_series(results[q]) for q in group):  # type: ignore[arg-type]
            failures.append(f"{where}: no data: {' or '.join(group)}")
    return failures, len(checks)


async def team_calls(base: str, sdk: SDKClients) -> int:
    """A call from each team that has a budget (the cost-by-team panels and forecasts)."""
    client = sdk.openai(base)
    for team in ("search", "ads"):
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"A question from {team}."}],
            extra_headers={"x-team": team},
        )
    return 2


async def shadowed(records: RecordingSink, calls: int) -> int:
    """Once the sidecar recorded `calls` app calls: how many of them were shadowed."""
    done = await records.wait_for(calls)
    return sum(1 for record in done if record.pair_id and record.variant == "control")


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
async def test_every_panel_query_returns_data(
    mode: str,
    sidecar_factory: SidecarFactory,
    simulator: RunningSimulator,
    sdk: SDKClients,
    records: RecordingSink,
    tmp_path: Path,
) -> None:
    sidecar = await sidecar_factory(SIDECAR_CONFIG, environ=mode_environ(mode))
    admin = urlsplit(sidecar.admin_url).netloc
    rules = tmp_path / "objectives.yaml"
    rules.write_text(rule_file(groups_for(load_config(OBJECTIVES))))
    async with running_prometheus([admin], tmp_path / "prometheus", [rules]) as prometheus:
        # Two waves with a scrape between them: every series exists before it increases,
        # so rates over the window are above zero.
        calls = await send_wave(sidecar.proxy_url, sdk, simulator)
        calls += await team_calls(sidecar.proxy_url, sdk)
        await wait_for_calls(prometheus, calls, await shadowed(records, calls))
        calls += await send_wave(sidecar.proxy_url, sdk, simulator)
        calls += await team_calls(sidecar.proxy_url, sdk)
        await wait_for_calls(prometheus, calls, await shadowed(records, calls))

        dashboards = committed_dashboards()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        failures, checked = await empty_queries(dashboards, prometheus)
        while failures and loop.time() < deadline:
            await asyncio.sleep(0.5)
            failures, checked = await empty_queries(dashboards, prometheus)
    assert checked > 100
    assert not failures, "queries without data:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('rate(a_total{job=~"$job"}[$__rate_interval])', 'rate(a_total{job=~"x"}[1m])'),
        ("increase(b[${__range}])", "increase(b[5m])"),
    ],
)
def test_substitute_fills_variables_and_builtins(expr: str, expected: str) -> None:
    assert substitute(expr, {"job": "x"}) == expected


def test_substitute_rejects_an_undefined_variable() -> None:
    with pytest.raises(KeyError, match=r"\$nope"):
        substitute('up{job=~"$nope"}', {})
