"""`model-sidecar probe`: start (or reach) a sidecar, run the probe, print the report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from sidecar.config.load import ConfigError, load_config, parse_upstream_flags
from sidecar.probe.budget import BudgetGate
from sidecar.probe.metrics import MetricsReader
from sidecar.probe.output import markdown, print_table, to_json
from sidecar.probe.prompts import DEFAULT_PROMPTS, Prompt, PromptFileError, load_prompts
from sidecar.probe.results import ProbeReport, build_report
from sidecar.probe.runner import ModelRun, ProbeRunner, ProbeSettings
from sidecar.probe.targets import (
    ProbeTarget,
    Upstream,
    resolve_targets,
    upstreams_of_config,
    upstreams_of_status,
)
from sidecar.tools.traffic import SDKCaller

EXIT_OK = 0
EXIT_MODEL_FAILED = 1
EXIT_USAGE = 2


class ProbeSetupError(Exception):
    """The probe cannot start at all (bad prompts file, config, or sidecar URL)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class ProbeOptions:
    """The probe's command-line options."""

    models: tuple[str, ...]
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    prompts_file: str | None = None
    sidecar_url: str | None = None  # a running sidecar's proxy URL; None: start one here
    sidecar_admin_url: str | None = None
    config_file: str | None = None  # for the in-process sidecar (prices, upstreams)
    upstreams: tuple[str, ...] = ()  # NAME=URL, as `serve --upstream`
    max_retries: int = 2  # the SDKs' own retries, as an app would have them
    output_format: str = "table"
    progress: bool = True


@dataclass(frozen=True)
class SidecarEndpoints:
    """Where the probe sends calls and reads metrics, and the upstreams behind them."""

    proxy_url: str
    metrics_url: str
    upstreams: Mapping[str, Upstream]


async def run_probe(
    options: ProbeOptions, *, environ: Mapping[str, str], stdout: TextIO, console: Console
) -> int:
    """Run the whole probe; the exit status (0 all models answered, 1 some did not, 2 usage)."""
    try:
        _check_sdks()
        prompts = load_prompts(options.prompts_file) if options.prompts_file else DEFAULT_PROMPTS
        async with aiohttp.ClientSession() as http, _sidecar(options, environ, http) as endpoints:
            probes = resolve_targets(options.models, endpoints.upstreams, environ)
            report = await measure(options, probes, prompts, endpoints, http, console)
    except (ProbeSetupError, PromptFileError, ConfigError) as exc:
        console.print(Text("model-sidecar probe: cannot start:", style="red"))
        for line in exc.errors:
            console.print(Text(f"  {line}"))
        return EXIT_USAGE
    if options.output_format == "json":
        stdout.write(to_json(report))
    elif options.output_format == "markdown":
        stdout.write(markdown(report))
    else:
        print_table(report, stdout)
    return EXIT_OK if report.all_ok else EXIT_MODEL_FAILED


def _check_sdks() -> None:
    """The probe calls models with the official SDKs: say how to get them if they are missing."""
    missing = [name for name in ("openai", "anthropic") if importlib.util.find_spec(name) is None]
    if missing:
        raise ProbeSetupError(
            [f"the probe needs the {' and '.join(missing)} SDK: pip install 'model-sidecar[demo]'"]
        )


@contextlib.asynccontextmanager
async def _sidecar(
    options: ProbeOptions, environ: Mapping[str, str], http: aiohttp.ClientSession
) -> AsyncIterator[SidecarEndpoints]:
    """A running sidecar's endpoints, or a sidecar started here for the probe's duration."""
    if options.sidecar_url:
        yield await _remote(options.sidecar_url, options.sidecar_admin_url, http)
        return
    from sidecar.probe.local import LocalSidecar

    config = load_config(
        options.config_file,
        listen="127.0.0.1:0",
        admin_listen="127.0.0.1:0",
        upstreams=parse_upstream_flags(list(options.upstreams)),
        environ=environ,
    )
    sidecar = LocalSidecar(config)
    await sidecar.start()
    try:
        yield SidecarEndpoints(
            sidecar.proxy_url, f"{sidecar.admin_url}/metrics", upstreams_of_config(config)
        )
    finally:
        await sidecar.stop()


async def _remote(
    proxy_url: str, admin_url: str | None, http: aiohttp.ClientSession
) -> SidecarEndpoints:
    if not admin_url:
        raise ProbeSetupError(["--sidecar needs --sidecar-admin (its admin URL, for /metrics)"])
    admin = admin_url.rstrip("/").removesuffix("/metrics")
    try:
        async with http.get(f"{admin}/status", timeout=aiohttp.ClientTimeout(total=10)) as reply:
            reply.raise_for_status()
            status = await reply.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ProbeSetupError([f"cannot read {admin}/status: {exc}"]) from exc
    return SidecarEndpoints(
        proxy_url.rstrip("/").removesuffix("/v1"), f"{admin}/metrics", upstreams_of_status(status)
    )


async def measure(
    options: ProbeOptions,
    probes: Sequence[ProbeTarget],
    prompts: Sequence[Prompt],
    endpoints: SidecarEndpoints,
    http: aiohttp.ClientSession,
    console: Console,
) -> ProbeReport:
    """Warm up, send every model's calls through `endpoints`, and read the report off /metrics."""
    settings = options.settings
    metrics = MetricsReader(endpoints.metrics_url, http)
    try:
        await metrics.mark_baseline()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProbeSetupError([f"cannot read {endpoints.metrics_url}: {exc}"]) from exc
    runnable = [probe.metrics_key for probe in probes if probe.problem is None]
    budget = (
        BudgetGate(settings.budget_usd, metrics, runnable)
        if settings.budget_usd is not None
        else None
    )
    caller = SDKCaller(endpoints.proxy_url, max_retries=options.max_retries)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not options.progress,
    )
    runner = ProbeRunner(caller, probes, prompts, settings, budget=budget)
    warmup = min(settings.warmup_calls, settings.requests)
    bars = {
        run.probe.label: progress.add_task(run.probe.label, total=run.planned + warmup)
        for run in runner.runs
        if run.planned
    }
    runner.on_call_done = lambda run: progress.advance(bars[run.probe.label])
    started = time.monotonic()
    try:
        with progress:
            await _until_done_or_signalled(runner, metrics)
    finally:
        await caller.close()
    sent = {run.probe.metrics_key: run.warmed + run.started for run in runner.runs}
    ledger = await metrics.wait_until_recorded(sent)  # since before the warm-up
    spent = sum(ledger[key].cost_usd for key in sent if key in ledger)
    summary = await metrics.summary()
    report = build_report(
        runner.runs,
        summary,
        settings,
        prompts=len(prompts),
        metrics_url=endpoints.metrics_url,
        duration_s=time.monotonic() - started,
        spent_usd=spent,
        budget_reached=bool(budget and budget.exhausted),
    )
    if budget is not None:
        _note_unpriced(report, runner.runs, budget)
    return report


async def _warm_then_measure(runner: ProbeRunner, metrics: MetricsReader) -> None:
    """Warm up, wait until /metrics has every warm-up call, then send the measured calls."""
    await runner.warm_up()
    await metrics.wait_until_recorded({r.probe.metrics_key: r.warmed for r in runner.runs})
    await metrics.mark_baseline(ledger=False)
    await runner.run()


async def _until_done_or_signalled(runner: ProbeRunner, metrics: MetricsReader) -> None:
    """Run the probe; SIGINT or SIGTERM ends it early, keeping what was measured."""
    task = asyncio.create_task(_warm_then_measure(runner, metrics))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the probe itself is being cancelled, not just interrupted by a signal
        for run in runner.runs:
            if run.planned and run.started < run.planned:
                run.stopped = run.stopped or "interrupted"
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _note_unpriced(report: ProbeReport, runs: Sequence[ModelRun], budget: BudgetGate) -> None:
    labels = {run.probe.label for run in runs if run.probe.metrics_key in budget.unpriced}
    for result in report.models:
        if result.model in labels:
            extra = "unpriced: the budget did not limit it"
            result.note = f"{result.note}; {extra}" if result.note else extra


def options_from_args(args: argparse.Namespace) -> ProbeOptions:
    """ProbeOptions from the parsed `probe` flags (see sidecar/probe/arguments.py)."""
    settings = ProbeSettings(
        requests=args.requests,
        concurrency=args.concurrency,
        stream=args.stream,
        repeat=args.repeat,
        repeat_prompts=args.repeat_prompts,
        max_tokens=args.max_tokens,
        logprobs=args.logprobs,
        budget_usd=args.budget_usd,
        warmup=args.warmup,
    )
    return ProbeOptions(
        models=tuple(args.model),
        settings=settings,
        prompts_file=args.prompts,
        sidecar_url=args.sidecar,
        sidecar_admin_url=args.sidecar_admin,
        config_file=args.config,
        upstreams=tuple(args.upstream or ()),
        max_retries=args.max_retries,
        output_format=args.format,
        progress=not args.no_progress,
    )


async def probe_main(options: ProbeOptions) -> int:
    """The probe as the command runs it: environment keys, report on stdout, the rest on stderr."""
    console = Console(stderr=True)
    return await run_probe(options, environ=os.environ, stdout=sys.stdout, console=console)
