"""The comparison page in a real headless Chromium, fed by the demo's traffic through a real
sidecar: the table shows what /api/summary says, the charts are drawn, the stop-loss's rollback
shows within one refresh, control actions need the token, and nothing leaves loopback.
Screenshots at a laptop's and a phone's width are kept (tests/helpers/browser.py says where)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from sidecar.app import Sidecar
from sidecar.config.models import SidecarConfig
from sidecar.simulate.simulator import Simulator
from sidecar.tools.demo import DEMO_EXPERIMENT, DEMO_TARGETS, DEMO_UPSTREAMS
from sidecar.tools.traffic import PLACEHOLDER_KEY, PROMPTS, TrafficGenerator
from tests.helpers.browser import BrowserLog, artifact_dir, headless_chromium
from tests.helpers.simulator import running_simulator

TOKEN = "page-test-token-5d1c"
INTERVAL = 1.0  # the page's refresh and snapshot interval, seconds
EXPERIMENT = DEMO_EXPERIMENT["name"]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Paths the page may request: itself, its data, and the control endpoint it was asked to call.
PAGE_PATHS = {"/", "/api/summary", f"/experiments/{EXPERIMENT}/resume"}
# The table's number columns: the comparison report's (report.COMPARISON_COLUMNS), by field.
FIELDS = (
    "calls", "p50_seconds", "p95_seconds", "p95_ttft_seconds", "cost_per_10k_usd",
    "error_ratio", "retry_ratio", "low_confidence_ratio", "repeatability",
    "feedback.accepted", "feedback.edited", "feedback.rejected", "feedback.hallucination",
    "hallucinations_per_1k", "mean_edit_seconds",
)  # fmt: skip


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def table_rows(page: Any) -> list[dict[str, Any]]:
    """Each table row as the page shows it: its keys and every cell's data-value and text."""
    rows: list[dict[str, Any]] = await page.eval_on_selector_all(
        "#table-body tr",
        """trs => trs.map(tr => ({
            model: tr.dataset.model, experiment: tr.dataset.experiment, variant: tr.dataset.variant,
            cells: Object.fromEntries([...tr.querySelectorAll('td[data-field]')].map(
                td => [td.dataset.field, [td.dataset.value, td.textContent]]))
        }))""",
    )
    return rows


def field(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value[part]
    return value


async def wait_until(page: Any, expression: str, timeout: float = 10.0) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function evaluates
    a string in the page, which the page's Content-Security-Policy forbids, as it should.)"""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await page.evaluate(expression):
        if loop.time() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        await asyncio.sleep(0.05)


async def refreshes(page: Any) -> int:
    return int(await page.evaluate("Number(document.body.dataset.refreshes || 0)"))


async def wait_refreshed(page: Any, after: int) -> None:
    await wait_until(page, f"Number(document.body.dataset.refreshes || 0) > {after}")


async def rolled_back_at(admin_url: str, traffic: asyncio.Task[Any]) -> float:
    """When /status first shows the experiment's candidate rolled back (polled)."""
    loop = asyncio.get_running_loop()
    while not traffic.done():
        status = await get_json(admin_url + "/status")
        if status["experiments"][EXPERIMENT]["rolled_back"]:
            return loop.time()
        await asyncio.sleep(0.05)
    raise AssertionError("the demo's flaky candidate was never rolled back")


@pytest.mark.slow
async def test_page_shows_the_summary_charts_and_a_rollback_with_nothing_leaving_loopback(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")
    async with running_simulator(Simulator(seed=7)) as simulator:
        config = SidecarConfig.model_validate(
            {
                "listen": "127.0.0.1:0",
                "admin_listen": "127.0.0.1:0",
                "admin_token_file": str(token_file),
                "upstreams": {name: {"url": simulator.url} for name in DEMO_UPSTREAMS},
                "experiments": [DEMO_EXPERIMENT],
                "ui": {"snapshot_interval_seconds": INTERVAL},
            }
        )
        sidecar = Sidecar(config, environ={})
        await sidecar.start()
        generator = TrafficGenerator(sidecar.proxy_url, DEMO_TARGETS, rng=random.Random(7))
        try:
            async with headless_chromium() as browser:
                await check_page(browser, sidecar, generator)
        finally:
            await generator.close()
            await sidecar.stop()


async def check_page(browser: Any, sidecar: Sidecar, generator: TrafficGenerator) -> None:
    admin = sidecar.admin_url
    page = await browser.new_page(viewport=LAPTOP)
    log = BrowserLog(page)
    await page.goto(admin + "/")
    await wait_refreshed(page, 0)

    # The demo's traffic: the stop-loss rolls the flaky candidate back while the page watches.
    traffic = asyncio.create_task(generator.run(8.0, 40.0))
    tripped = await rolled_back_at(admin, traffic)
    seen = await refreshes(page)
    state = f'article[data-experiment="{EXPERIMENT}"] .state'
    await wait_until(
        page, f"document.querySelector('{state}')?.textContent.includes('rolled back')"
    )
    shown_after = asyncio.get_running_loop().time() - tripped
    # Within one refresh: the one under way when the stop-loss tripped may have read the
    # state just before it; the next one must show it.
    assert await refreshes(page) <= seen + 2, "the rollback showed only after more refreshes"
    assert shown_after < 2 * INTERVAL + 1.5, shown_after
    await traffic

    # Quiet now: the table, read after a refresh that came after the last call, is exactly
    # /api/summary. The window is chosen with the keyboard alone.
    await asyncio.sleep(0.3)  # the last records through the pipeline
    await choose_window_with_keyboard(page, "Since start")
    before = await refreshes(page)
    await wait_refreshed(page, before)
    summary = await get_json(admin + "/api/summary?window=start")
    shown = await table_rows(page)
    expected = {(r["model"], r["experiment"], r["variant"]): r for r in summary["rows"]}
    assert {(r["model"], r["experiment"], r["variant"]) for r in shown} == set(expected)
    assert {target.model for target in DEMO_TARGETS} | {"gpt-4.1-nano"} <= {
        key[0] for key in expected
    }
    # As in `report`, a column nothing was measured for (no value but 0 in any row) is left out.
    columns = {name for name in FIELDS if any(field(r, name) for r in summary["rows"])}
    assert {"calls", "p95_seconds", "cost_per_10k_usd", "error_ratio"} <= columns
    for row in shown:
        assert set(row["cells"]) == columns, (row["model"], set(row["cells"]) ^ columns)
        want = expected[(row["model"], row["experiment"], row["variant"])]
        for name, (value, text) in row["cells"].items():
            number = field(want, name)
            if number is None:
                assert value == "" and text == "—", (row["model"], name, value, text)
            else:
                assert float(value) == number, (row["model"], name, value, number)
                assert text and text != "—", (row["model"], name)
    # Units are said: in the headers, and on the values that have none of their own.
    headers = await page.eval_on_selector_all(
        "#table-head th", "ths => ths.map(t => t.textContent)"
    )
    assert "p95, ms" in headers and "$ per 10k calls" in headers and "Errors, %" in headers
    nano = next(r for r in shown if r["model"] == "gpt-4.1-nano")
    assert float(nano["cells"]["error_ratio"][0]) > 0

    # The charts are drawn: a line (or a point) per model and arm, and a bar per priced row.
    lines = await page.evaluate("document.body.dataset.chartLines")
    assert all(int(count) >= len(expected) for count in lines.split(",")), lines
    for chart in ("#chart-p50", "#chart-p95", "#chart-ttft"):
        marks = await page.eval_on_selector_all(f"{chart} [data-line]", "m => m.length")
        assert marks >= len(expected), (chart, marks)
        drawn = await page.eval_on_selector(f"{chart} path[data-line]", "p => p.getAttribute('d')")
        assert drawn.count("L") >= 1, drawn
    priced = [r for r in summary["rows"] if r["cost_per_10k_usd"] is not None]
    assert await page.eval_on_selector_all("#chart-cost rect", "r => r.length") == len(priced)

    # The experiment: weights now, the gate that tripped, and the transition, in words.
    article = page.locator(f'article[data-experiment="{EXPERIMENT}"]')
    assert "100 %" in await article.locator('tr[data-arm="control"]').inner_text()
    gate = await article.locator('tr[data-gate="errors"]').text_content() or ""
    assert "rolled back" in gate and "≤ +10.0 pts" in gate, gate
    assert "rolled back by the stop-loss (errors)" in await article.inner_text()

    await screenshots(page, "laptop-1280x800.png")
    await page.set_viewport_size(PHONE)
    await page.wait_for_timeout(400)  # the charts are redrawn for the new width
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone"
    await screenshots(page, "phone-390.png")
    await check_controls(page)

    # Never a credential or a prompt on the page.
    html = await page.content()
    assert PLACEHOLDER_KEY not in html and TOKEN not in html
    assert not any(prompt in html for prompt in PROMPTS)
    # The one error: the browser's note on the 401 answer to the wrong token.
    refused = [e for e in log.errors if "status of 401" in e]
    assert len(refused) == 1 and len(log.errors) == 1, log.errors
    port = urlsplit(admin).port
    for method, url in log.requests:
        parts = urlsplit(url)
        assert (parts.hostname, parts.port) == ("127.0.0.1", port), (method, url)
        assert parts.path in PAGE_PATHS, (method, url)


async def choose_window_with_keyboard(page: Any, label: str) -> None:
    """Tab from the top of the page to the window button named `label`, press Enter."""
    await page.locator("body").focus()
    for _ in range(20):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent")
        if focused == label:
            await page.keyboard.press("Enter")
            pressed = page.locator('button[data-window][aria-pressed="true"]')
            assert await pressed.inner_text() == label
            return
    raise AssertionError(f"{label!r} cannot be reached with Tab")


async def check_controls(page: Any) -> None:
    """No control action without a token; a wrong one is refused; the right one resumes."""
    resume = page.locator('button[data-action="resume"]')
    assert await resume.is_disabled()
    await page.fill("#token", "not-the-token")
    assert await resume.is_enabled()
    await resume.click()
    await wait_until(
        page, "document.getElementById('action-result').textContent.includes('refused')"
    )
    await page.fill("#token", TOKEN)
    await resume.click()
    await wait_until(page, "document.getElementById('action-result').textContent.includes('done')")
    state = f'article[data-experiment="{EXPERIMENT}"] .state'
    await wait_until(page, f"document.querySelector('{state}')?.textContent === 'running'")
    await page.fill("#token", "")
    assert await resume.is_disabled()


async def screenshots(page: Any, name: str) -> None:
    path = artifact_dir("comparison-page") / name
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
