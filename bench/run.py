"""`python -m bench`: the same load against every contender, in the same run, three times.

Prints the tables (medians over repetitions, ratios to direct and to the bare
pass-through) and PASS/FAIL against the targets of issue #6, then the scenarios of
issue #23 (start-up, footprint, held streams; bench/pod.py). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench import loads
from bench.contenders import Contender, Setting, contenders
from bench.litellm import default_venv
from bench.options import build_parser
from bench.pod import POD_PLANS, SCENARIOS, PodPlan, PodResults, run_pod
from bench.pod_report import pod_report, pod_verdicts, warnings
from bench.procs import (
    Child,
    Cores,
    cpu_seconds,
    free_port,
    peak_rss_bytes,
    pin_argv,
    plan_cores,
    raise_fd_limit,
)
from bench.report import Measurement, Summary, summarize, tables, verdict_lines, verdicts
from bench.telemetry import LoopScraper, OtlpSink, PrometheusScraper

REPO = Path(__file__).resolve().parent.parent
UPSTREAMS = {"tiny": "bench/upstream.py", "simulator": "model-sidecar simulate --fastest"}


@dataclass(frozen=True)
class Plan:
    """How long and how hard each load runs."""

    repetitions: int
    rates: tuple[int, ...]
    open_seconds: float
    closed_seconds: float  # whole seconds for wrk
    concurrency: int
    stream_counts: tuple[tuple[int, int], ...]  # (concurrency, streams)
    chunk_interval_ms: float
    warmup_calls: int


PLANS = {
    "smoke": Plan(1, (100, 300), 0.3, 1.0, 64, ((1, 3), (16, 16)), 1.0, 16),
    "quick": Plan(3, (100, 300), 1.5, 2.0, 64, ((1, 20), (16, 160)), 5.0, 64),
    "full": Plan(3, (100, 300), 10.0, 10.0, 64, ((1, 100), (16, 800)), 5.0, 256),
}
PLANS["streams"] = PLANS["full"]  # --streams runs only the held streams of issue #23


async def start_upstream(
    kind: str, workdir: Path, cores: Cores, interval_ms: float
) -> tuple[Child, str]:
    """The fast upstream: bench/upstream.py, or the simulated provider in fastest mode."""
    if kind == "simulator":
        port = free_port()
        argv = [sys.executable, "-m", "sidecar.cli", "simulate", "--fastest"]
        argv += ["--listen", f"127.0.0.1:{port}"]
    else:
        port = free_port()
        argv = [sys.executable, "-m", "bench.upstream", "--listen", f"127.0.0.1:{port}"]
        argv += ["--chunk-interval-ms", str(interval_ms)]
    child = Child("upstream", pin_argv(argv, cores.rest), workdir / "upstream.log", cwd=REPO)
    await child.wait_for_port(port, timeout=30)
    return child, f"http://127.0.0.1:{port}"


async def measure(
    contender: Contender, setting: Setting, plan: Plan, repetition: int
) -> Measurement:
    """Every load against one freshly started contender."""
    result = Measurement(contender.name, repetition)
    running = await contender.start(setting, repetition)
    pid = running.pid
    try:
        async with loads.client_session() as session:
            result.warmup_errors = await loads.warm_up(session, running.url, plan.warmup_calls)
            before = cpu_seconds(pid) if pid else 0.0
            if loads.wrk_available():
                result.throughput = await loads.closed_loop_wrk(
                    running.url, plan.concurrency, plan.closed_seconds, setting.cores.rest,
                    setting.workdir,
                )  # fmt: skip
            else:
                result.throughput = await loads.closed_loop_asyncio(
                    session, running.url, plan.concurrency, plan.closed_seconds
                )
            if pid and result.throughput.calls:
                used = cpu_seconds(pid) - before
                result.cpu_us_per_call = used / result.throughput.calls * 1e6
            ceiling = result.throughput.per_second if pid else None
            for rate in plan.rates:
                if ceiling is not None and rate > 0.8 * ceiling:
                    result.open_loop[rate] = None  # over this contender's capacity
                    continue
                result.open_loop[rate] = await loads.open_loop(
                    session, running.url, rate, plan.open_seconds
                )
            for concurrency, count in plan.stream_counts:
                result.streams[concurrency] = await loads.streams(
                    session, running.url, concurrency, count
                )
        result.peak_rss_bytes = peak_rss_bytes(pid) if pid else None
    finally:
        running.stop()
    return result


def source_version() -> str:
    """The commit the sidecar ran from (`git describe --always --dirty`), when in a checkout."""
    import subprocess

    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO, capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def machine_line(cores: Cores) -> str:
    """What ran the benchmark, for the table's caption."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    pinning = (
        f"proxy pinned to CPU {cores.proxy[0]}, load generator and upstream to CPU {cores.rest[0]}"
        if cores.pinned
        else "not pinned (taskset or a second CPU missing)"
    )
    return (
        f"{os.cpu_count()} CPUs ({model or platform.machine()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}; {pinning}"
    )


def pod_plan(args: argparse.Namespace) -> PodPlan:
    """The sizes of the issue #23 scenarios for this mode, with the command line's overrides."""
    plan = POD_PLANS[args.mode]
    shape = plan.shape
    if args.generators:
        shape = replace(shape, generators=args.generators)
    if args.stream_chunks:
        shape = replace(shape, chunks=args.stream_chunks)
    if args.stream_interval_ms:
        shape = replace(shape, interval_ms=args.stream_interval_ms)
    levels = args.levels or plan.levels
    return replace(plan, shape=shape, levels=levels)


def chosen_scenarios(args: argparse.Namespace) -> set[str]:
    """The scenarios to run: --scenarios, else all (only the held streams for --streams)."""
    if args.scenarios:
        return {name.strip() for name in args.scenarios.split(",")}
    return {"streams"} if args.mode == "streams" else set(SCENARIOS)


async def run_calls(chosen: list[Contender], setting: Setting, plan: Plan) -> list[Measurement]:
    """The loads of issue #6: every contender, `plan.repetitions` times."""
    measurements = []
    for repetition in range(1, plan.repetitions + 1):
        # Rotate the order so no contender always runs first or last.
        shift = (repetition - 1) % len(chosen)
        order = [chosen[0], *(chosen[1:][shift:] + chosen[1:][:shift])]
        for contender in order:
            print(f"repetition {repetition}: {contender.name}", file=sys.stderr, flush=True)
            measurements.append(await measure(contender, setting, plan, repetition))
    return measurements


async def run(args: argparse.Namespace) -> int:
    """The whole benchmark; 0 when it completed (targets are reported, not enforced)."""
    plan = PLANS[args.mode]
    if args.rates:
        plan = replace(plan, rates=args.rates)
    if args.repetitions:
        plan = replace(plan, repetitions=args.repetitions)
    scenarios = chosen_scenarios(args)
    unknown = scenarios - set(SCENARIOS)
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}; choose from "
              f"{', '.join(SCENARIOS)}", file=sys.stderr)  # fmt: skip
        return 2
    pods = pod_plan(args)
    # Every held stream is a socket in the generator, two in the proxy, one in the upstream.
    raise_fd_limit(3 * max(pods.levels, default=0) + 1024)
    cores = plan_cores()
    if cores.rest:
        os.sched_setaffinity(0, cores.rest)
    workdir = Path(tempfile.mkdtemp(prefix="model-sidecar-bench-"))
    chosen = contenders(nginx=args.nginx, litellm=args.litellm)
    upstream, upstream_url = await start_upstream(
        args.upstream, workdir, cores, plan.chunk_interval_ms
    )
    otlp = OtlpSink(workdir, cores.rest)
    metrics_port = free_port()
    # A smoke run is over before Prometheus's first scrape (~6 s after it starts).
    use_prometheus = args.scraper == "prometheus" or (
        args.scraper == "auto" and args.mode != "smoke" and PrometheusScraper.available()
    )
    scraper: PrometheusScraper | LoopScraper = (
        PrometheusScraper(metrics_port, workdir, cores.rest)
        if use_prometheus
        else LoopScraper(metrics_port)
    )
    measurements: list[Measurement] = []
    spans = scrapes = 0
    started = time.monotonic()
    try:
        await otlp.start()
        await scraper.start()
        setting = Setting(
            workdir=workdir,
            cores=cores,
            upstream_url=upstream_url,
            otlp_url=otlp.url,
            metrics_port=metrics_port,
            litellm_venv=Path(args.litellm_venv) if args.litellm_venv else default_venv(),
        )
        if "calls" in scenarios:
            measurements = await run_calls(chosen, setting, plan)
            await asyncio.sleep(0.5)  # the last batch of spans
            spans = await otlp.spans()
            scrapes = await scraper.successful_scrapes()
        pod = await run_pod(pods, scenarios, setting, otlp, args.nginx)
    finally:
        scraper.stop()
        otlp.stop()
        upstream.stop()
    elapsed = time.monotonic() - started
    summaries = [summarize(measurements, c.name) for c in chosen] if measurements else []
    telemetry = (spans, scrapes, scraper.name)
    print_report(args, plan, cores, summaries, telemetry, pod, elapsed)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "plan": asdict(plan),
                    "summaries": [asdict(s) for s in summaries],
                    "measurements": [asdict(m) for m in measurements],
                    "spans_received": spans,
                    "successful_scrapes": scrapes,
                    "verdicts": [asdict(v) for v in verdicts(summaries)] if summaries else [],
                    "pod": asdict(pod),
                    "pod_verdicts": [asdict(v) for v in pod_verdicts(pod)],
                },
                indent=1,
            )
        )
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def print_report(
    args: argparse.Namespace,
    plan: Plan,
    cores: Cores,
    summaries: list[Summary],
    telemetry: tuple[int, int, str],
    pod: PodResults,
    elapsed: float,
) -> None:
    """The caption, the tables, the telemetry check and the verdicts; then issue #23's."""
    command = "python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    today = datetime.date.today().isoformat()
    tool = "wrk -t1 -c64" if loads.wrk_available() else "asyncio closed loop (wrk missing)"
    machine = f"Machine: {machine_line(cores)}. Source: {source_version()}."
    print(f"### model-sidecar benchmark, {today}")
    repetitions = f"{plan.repetitions} repetition(s), medians shown, " if summaries else ""
    print(f"`{command.strip()}` — {args.mode} mode, {repetitions}{elapsed:.0f} s")
    print(machine)
    if summaries:
        spans, scrapes, scraper = telemetry
        print(
            f"Upstream: {UPSTREAMS[args.upstream]}; "
            f"closed loop: {tool}, {plan.closed_seconds} s; open loop: asyncio generator, "
            f"{plan.open_seconds} s per rate; streams: 20 chunks {plan.chunk_interval_ms} ms "
            "apart."
        )
        print()
        print(tables(summaries))
        print()
        print(
            f"Full telemetry during the run: {spans} spans received over OTLP, "
            f"{scrapes} successful scrapes of /metrics ({scraper})."
        )
        print()
        print(verdict_lines(verdicts(summaries)))
        print()
    if pod.startup or pod.footprints or pod.held:
        caption = (
            "One run per scenario (start-up: median of several). Upstream: bench/upstream.py; "
            f"sidecar-full exports spans to bench/otlp_sink.py and is scraped ({telemetry[2]})."
        )
        print(pod_report(pod, caption))
        print("```")
        print(verdict_lines(pod_verdicts(pod)))
        for line in warnings(pod):
            print(line)
        print("```")


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench`."""
    args = build_parser().parse_args(argv)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(args))
    return uvloop.run(run(args))
