"""JSON, Markdown and the terminal table carry the same numbers; `--sidecar` uses a running one."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiohttp
from markdown_it import MarkdownIt
from rich.console import Console

from sidecar.app import Sidecar
from sidecar.probe.command import ProbeOptions, SidecarEndpoints, measure, run_probe
from sidecar.probe.output import COLUMNS, markdown, print_table, row_cells, to_json
from sidecar.probe.prompts import load_prompts
from sidecar.probe.results import ModelResult, ProbeReport
from sidecar.probe.runner import ProbeSettings
from sidecar.probe.targets import resolve_targets, upstreams_of_config
from sidecar.tools.report import summarize
from tests.helpers.probe import probe
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

MODELS = ("openai:gpt-4o-mini", "openai:gpt-4.1-nano", "anthropic:claude-3-5-haiku-latest")


async def make_report(sidecar: Sidecar, prompts_file: Path) -> ProbeReport:
    endpoints = SidecarEndpoints(
        sidecar.proxy_url, f"{sidecar.admin_url}/metrics", upstreams_of_config(sidecar.config)
    )
    options = ProbeOptions(
        models=MODELS,
        settings=ProbeSettings(requests=16, concurrency=4, repeat=3, repeat_prompts=2),
        max_retries=0,
        progress=False,
    )
    probes = resolve_targets(MODELS, endpoints.upstreams, {})
    async with aiohttp.ClientSession() as http:
        return await measure(
            options,
            probes,
            load_prompts(prompts_file),
            endpoints,
            http,
            Console(file=io.StringIO()),
        )


def table_cells(text: str) -> list[list[str]]:
    """The body rows of the rich table in a terminal rendering."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if len(cells) == len(COLUMNS) and any(cells[1] == m for m in MODELS):
            rows.append(cells)
    return rows


def markdown_cells(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of the first table, as a Markdown parser sees them."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    rows: list[list[str]] = []
    in_row = False
    for token in tokens:
        if token.type in ("tr_open", "tr_close"):
            in_row = token.type == "tr_open"
            rows += [[]] if in_row else []
        elif token.type == "inline" and in_row:
            rows[-1].append(token.content)
    return rows[0], rows[1:]


async def test_json_markdown_and_table_carry_the_same_numbers(
    sidecar: Sidecar, prompts_file: Path
) -> None:
    report = await make_report(sidecar, prompts_file)
    expected = [list(row_cells(model)) for model in report.models]
    assert len(expected) == 3 and all(row[2] == "22" for row in expected)  # 16 + 3 x 2 repeats

    terminal = io.StringIO()
    print_table(report, terminal)
    assert table_cells(terminal.getvalue()) == expected

    header, body = markdown_cells(markdown(report))
    assert header == list(COLUMNS)
    assert body == expected

    document = json.loads(to_json(report))
    assert document["schema"] == "model-sidecar/probe/v1"
    from_json = [list(row_cells(ModelResult(**model))) for model in document["models"]]
    assert from_json == expected
    nano = next(m for m in document["models"] if m["model"] == "openai:gpt-4.1-nano")
    assert nano["errors_by_type"] and "errors by type" in terminal.getvalue()
    assert "errors by type" in markdown(report)


async def test_a_running_sidecar_is_probed_without_counting_its_earlier_traffic(
    sidecar_factory: SidecarFactory, simulator: RunningSimulator, prompts_file: Path
) -> None:
    sidecar = await sidecar_factory()
    async with aiohttp.ClientSession() as http:
        for _ in range(3):  # the app's own traffic before the probe
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(f"{sidecar.proxy_url}/v1/chat/completions", json=body) as r:
                assert r.status == 200
        options = ProbeOptions(
            models=("openai:gpt-4o-mini",),
            settings=ProbeSettings(requests=6, concurrency=2),
            prompts_file=str(prompts_file),
            sidecar_url=f"{sidecar.proxy_url}/v1",
            sidecar_admin_url=sidecar.admin_url,
            max_retries=0,
            output_format="json",
            progress=False,
        )
        out = io.StringIO()
        status = await run_probe(
            options, environ={}, stdout=out, console=Console(file=io.StringIO())
        )
        async with http.get(f"{sidecar.admin_url}/metrics") as reply:
            text = await reply.text()
    assert status == 0
    mini = json.loads(out.getvalue())["models"][0]
    assert mini["calls"] == 6 and mini["warmup_calls"] == 2
    everything = summarize(text)[0]
    assert everything.calls == 3 + 2 + 6  # /metrics has it all; the probe counted its own


async def test_markdown_is_what_the_probe_prints(
    simulator: RunningSimulator, prompts_file: Path
) -> None:
    run = await probe(
        ["openai:gpt-4o-mini"],
        {"openai": simulator.url},
        prompts_file,
        output_format="markdown",
        requests=4,
        concurrency=2,
    )
    assert run.status == 0
    header, body = markdown_cells(run.out)
    assert header == list(COLUMNS) and body[0][:3] == ["1", "openai:gpt-4o-mini", "4"]
