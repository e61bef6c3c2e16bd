"""`model-sidecar demo`: simulated providers, the sidecar, SDK traffic, a live table."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import time
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sidecar.app import Sidecar
from sidecar.config.models import SidecarConfig, split_host_port
from sidecar.tools.report import COLUMNS, summarize, table_rows
from sidecar.tools.traffic import ModelTarget, TrafficGenerator

# Contrasting profiles of the simulated provider (sidecar/simulate/profiles.py).
DEMO_TARGETS = (
    ModelTarget("gemini", "gemini-2.0-flash", 3.0),  # fast, cheap flash-class
    ModelTarget("openai", "gpt-4o-mini", 5.0),  # fast, cheap: the experiment's control
    ModelTarget("anthropic", "claude-sonnet-4", 2.0),  # slower, pricier, steady
    ModelTarget("openai", "gpt-4o", 2.0),  # not repeatable at temperature 0
    ModelTarget("azure", "prod-gpt4o", 1.5),  # an Azure OpenAI deployment serving gpt-4o
    ModelTarget("vertex", "gemini-2.5-flash", 1.5),  # Gemini on Vertex AI (with thinking)
    ModelTarget("ollama", "llama3.2", 1.5),  # a small local model: slow, free
)
# The built-in upstreams the demo's targets need, all at the simulator.
DEMO_UPSTREAMS = ("openai", "anthropic", "gemini", "azure", "vertex", "ollama")
# A split experiment: 30 % of the gpt-4o-mini calls go to the flaky gpt-4.1-nano (429s,
# errors, unsure answers) until the stop-loss sees its error ratio and rolls it back.
DEMO_EXPERIMENT = {
    "name": "mini-vs-nano",
    "mode": "split",
    "match": {"model": "gpt-4o-mini"},
    "control": {"weight": 70},
    "candidates": [{"model": "gpt-4.1-nano", "weight": 30}],
    "stop_loss": {"window_calls": 100, "min_calls": 10, "max_error_ratio_increase": 0.1},
}
GROUP_BY = ("gen_ai_request_model", "variant")
DEFAULT_PROXY = "127.0.0.1:8788"
DEFAULT_ADMIN = "127.0.0.1:9788"


@dataclass(frozen=True)
class DemoOptions:
    """The demo's command-line options."""

    duration: float = 30.0
    rps: float = 20.0
    keep_running: bool = False
    live: bool = True


def free_or_fallback(address: str, console: Console) -> str:
    """`address` when its port is free, else the same host on a free port (and say so)."""
    host, port = split_host_port(address)
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
            return address
        except OSError:
            pass
    with socket.socket() as probe:
        probe.bind((host, 0))
        chosen = f"{host}:{probe.getsockname()[1]}"
    console.print(f"[yellow]{address} is busy: using {chosen} instead[/yellow]")
    return chosen


def summary_table(metrics_text: str, title: str) -> Table:
    """The per-model table, computed from a /metrics exposition."""
    table = Table(title=title, title_justify="left")
    table.add_column("model", no_wrap=True, min_width=16)
    table.add_column("variant", no_wrap=True)
    for column in COLUMNS:
        table.add_column(column, justify="right")
    for row in table_rows(summarize(metrics_text, GROUP_BY)):
        table.add_row(*row)
    return table


async def _metrics_text(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as response:
        return await response.text()


async def _start_simulator() -> tuple[web.AppRunner, str]:
    from sidecar.simulate.simulator import Simulator

    runner = web.AppRunner(Simulator(seed=7).build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def run_demo(options: DemoOptions) -> int:
    """Run simulator, sidecar and traffic; show the live table; print the summary and next steps."""
    console = Console(width=max(140, Console().width))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    sim_runner, sim_url = await _start_simulator()
    config = SidecarConfig.model_validate(
        {
            "listen": free_or_fallback(DEFAULT_PROXY, console),
            "admin_listen": free_or_fallback(DEFAULT_ADMIN, console),
            "upstreams": {name: {"url": sim_url} for name in DEMO_UPSTREAMS},
            "experiments": [DEMO_EXPERIMENT],
        }
    )
    sidecar = Sidecar(config, environ={})
    await sidecar.start()
    metrics_url = f"{sidecar.admin_url}/metrics"
    page_url = f"{sidecar.admin_url}/"
    # The page first: it is what a new user opens (nothing else to install).
    console.print(f"[bold]Open {page_url} in a browser[/bold]: the models compared, live.")
    console.print(
        "It shows the stop-loss act too, and stays up after the traffic with --keep-running."
        if not options.keep_running
        else "It stays up after the traffic until Ctrl-C (--keep-running)."
    )
    console.print(
        f"Simulated providers at {sim_url} (no network, no keys). The sidecar listens at "
        f"{sidecar.proxy_url}; its metrics are at {metrics_url}.\n"
        f"Sending {options.rps:g} calls/s for {options.duration:g} s through the official "
        "openai (incl. Azure OpenAI) and anthropic SDKs (Gemini, Vertex AI and Ollama over "
        "HTTP), streaming and not."
    )
    traffic = TrafficGenerator(sidecar.proxy_url, DEMO_TARGETS, rng=random.Random(7))
    run = asyncio.create_task(traffic.run(options.duration, options.rps))
    http = aiohttp.ClientSession()
    try:
        await _watch(run, stop, http, metrics_url, options, console, f"Page: {page_url}")
        if options.keep_running and not stop.is_set():
            console.print(f"Traffic done; still serving {page_url} and {metrics_url} until Ctrl-C.")
            await stop.wait()
        final = await _metrics_text(http, metrics_url)
        experiments = await _experiment_lines(http, sidecar.admin_url)
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await traffic.close()
        await http.close()
        await sidecar.stop()
        await sim_runner.cleanup()
    console.print(summary_table(final, "What the sidecar measured, per model (from /metrics)"))
    for line in experiments:
        console.print(line)
    console.print(
        f"The page was served at {page_url}; /metrics was served at {metrics_url}.\n"
        "Next steps: point your app at the sidecar (OPENAI_BASE_URL=http://127.0.0.1:8788/v1, "
        "ANTHROPIC_BASE_URL=http://127.0.0.1:8788) and run `model-sidecar serve`; import the "
        "Grafana dashboards in dashboards/; load the alert rules in alerts/; drop it into pods "
        "with the Helm chart in helm/model-sidecar/."
    )
    return 0


async def _watch(
    run: asyncio.Task[object],
    stop: asyncio.Event,
    http: aiohttp.ClientSession,
    metrics_url: str,
    options: DemoOptions,
    console: Console,
    heading: str,
) -> None:
    """Wait for the traffic (or a signal), refreshing the live table once a second."""
    started = time.monotonic()
    if not options.live:
        while not run.done() and not stop.is_set():
            await asyncio.wait([run], timeout=1.0)
        return
    progress = Progress(TextColumn("traffic"), BarColumn(), TimeRemainingColumn(), console=console)
    bar = progress.add_task("traffic", total=options.duration)
    with Live(console=console, refresh_per_second=4) as live:
        while not run.done() and not stop.is_set():
            await asyncio.wait([run], timeout=1.0)
            progress.update(bar, completed=min(options.duration, time.monotonic() - started))
            text = await _metrics_text(http, metrics_url)
            lines = await _experiment_lines(http, metrics_url.removesuffix("/metrics"))
            table = summary_table(text, "Live, from the sidecar's /metrics")
            live.update(Group(heading, progress, table, *lines))


async def _experiment_lines(http: aiohttp.ClientSession, admin_url: str) -> list[str]:
    """One line per experiment from /status: its weights, or why the stop-loss rolled it back."""
    async with http.get(admin_url + "/status") as response:
        status = await response.json()
    lines = []
    for name, state in status.get("experiments", {}).items():
        weights = ", ".join(f"{arm} {weight:g}%" for arm, weight in state["weights"].items())
        lines.append(f"experiment {name} ({state['mode']}): weights now {weights}")
        for trip in state["trips"]:
            lines.append(
                f"  stop-loss tripped: {trip['variant']} rolled back ({trip['reason']}: "
                f"{trip['detail']})"
            )
    return lines
