"""The scenarios of issue #23, "performance where a sidecar lives": their sizes and their run.

start-up (bench/startup.py), footprint (bench/footprint.py: idle RSS, CPU per
non-streaming call with and without span export, RSS after load) and held streams
(bench/long_streams.py: 16, 256 and 1,000 concurrent long streams). bench/run.py calls
`run_pod` with the processes it already runs (upstream, OTLP receiver, scraper).
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.contenders import (
    DIRECT,
    PASSTHROUGH,
    SIDECAR_DEFAULT,
    SIDECAR_FULL,
    Contender,
    Setting,
)
from bench.footprint import Footprint, FootprintSize, footprints
from bench.long_streams import HeldStreams, StreamShape, held_streams
from bench.procs import Child, cpu_pressure_seconds, pin_argv
from bench.startup import StartupTimes, startup_times
from bench.telemetry import OtlpSink

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = ("calls", "startup", "footprint", "streams")  # "calls": the loads of issue #6


@dataclass(frozen=True)
class PodPlan:
    """How big each scenario of issue #23 is."""

    startup_runs: int
    footprint: FootprintSize
    levels: tuple[int, ...]  # concurrent held streams
    shape: StreamShape


POD_PLANS = {
    "smoke": PodPlan(
        1, FootprintSize(0.3, 0.5, 0, 0.0, 16, 0.5), (16,), StreamShape(10, 10.0, 2, 0)
    ),
    "quick": PodPlan(
        3, FootprintSize(1.0, 2.0, 0, 0.0, 256), (16, 1000), StreamShape(50, 20.0, 2, 0)
    ),
    "full": PodPlan(
        10, FootprintSize(1.0, 10.0, 200, 10.0, 256), (16, 256, 1000), StreamShape(100, 20.0, 3, 0)
    ),
}
POD_PLANS["streams"] = POD_PLANS["full"]


@dataclass
class PodResults:
    """Everything the scenarios of issue #23 measured in one run."""

    plan: PodPlan
    startup: list[StartupTimes] = field(default_factory=list)
    footprints: list[Footprint] = field(default_factory=list)
    held: list[HeldStreams] = field(default_factory=list)
    # Share of the scenarios' wall time in which some task waited for a CPU: near 0 on a
    # quiet machine (the load itself adds a little), high when others share the cores.
    cpu_pressure: float | None = None


def nginx_installed() -> bool:
    """Whether nginx is there to compare with (never installed for these scenarios)."""
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()


def pod_contenders(nginx: bool) -> tuple[list[Contender], list[Contender]]:
    """(footprint contenders, held-stream contenders); nginx when asked for or installed."""
    proxies = [SIDECAR_DEFAULT, SIDECAR_FULL, PASSTHROUGH]
    if nginx or nginx_installed():
        from bench.nginx import NGINX

        proxies.append(NGINX)
    # Per chunk, the sidecar's telemetry is a parser step either way: the held streams compare
    # the full sidecar (the target's subject) with the references only.
    return proxies, [DIRECT, *(c for c in proxies if c is not SIDECAR_DEFAULT)]


async def start_stream_upstream(shape: StreamShape, setting: Setting) -> tuple[Child, str]:
    """bench/upstream.py with the long streams' chunk count and interval."""
    from bench.procs import free_port

    port = free_port()
    argv = [sys.executable, "-m", "bench.upstream", "--listen", f"127.0.0.1:{port}"]
    argv += ["--chunks", str(shape.chunks), "--chunk-interval-ms", str(shape.interval_ms)]
    log = setting.workdir / "stream-upstream.log"
    cores = setting.cores.spare or setting.cores.rest
    child = Child("stream-upstream", pin_argv(argv, cores), log, cwd=REPO)
    await child.wait_for_port(port, timeout=30)
    return child, f"http://127.0.0.1:{port}"


async def run_pod(
    plan: PodPlan, scenarios: set[str], setting: Setting, otlp: OtlpSink, nginx: bool
) -> PodResults:
    """The chosen scenarios of issue #23, in order: start-up, footprint, held streams."""
    results = PodResults(plan)
    proxies, with_direct = pod_contenders(nginx)
    pressure_before, started = cpu_pressure_seconds(), time.monotonic()
    if "startup" in scenarios:
        results.startup = await startup_times(
            plan.startup_runs, otlp.url, setting.cores.proxy, setting.workdir
        )
    if "footprint" in scenarios:
        results.footprints = await footprints(proxies, setting, otlp, plan.footprint)
    if "streams" in scenarios:
        upstream, url = await start_stream_upstream(plan.shape, setting)
        try:
            results.held = await held_streams(
                with_direct, setting, plan.levels, plan.shape, upstream, url
            )
        finally:
            upstream.stop()
    pressure_after = cpu_pressure_seconds()
    if pressure_before is not None and pressure_after is not None:
        results.cpu_pressure = (pressure_after - pressure_before) / (time.monotonic() - started)
    return results
