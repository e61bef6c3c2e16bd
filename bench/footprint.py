"""Footprint (issue #23): idle RSS, CPU per non-streaming call, RSS after load, per contender.

Each contender is started fresh; once ready (the sidecar's /readyz answers 200) and settled
with no traffic, its RSS is the idle RSS. Then non-streaming calls, a closed loop (64 at a
time, back to back: the proxy's own work per call, as in issue #6's table) and an open loop
at a fixed low rate (where, on a VM, waking an idle core for every call costs more than the
call's own work); the proxy's CPU over each phase (its CPU-time clock) divided by the calls
is its CPU per call. For a contender that exports spans a phase ends only when the OTLP
receiver has every span of it, so the export's cost is inside. Then a burst of concurrent
streams, and the RSS after the load (VmRSS) and its peak (VmHWM).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench import loads
from bench.contenders import Contender, Setting
from bench.procs import CpuClock, peak_rss_bytes, rss_bytes
from bench.telemetry import OtlpSink

CONCURRENCY = 64  # as the closed loop of issue #6
EXPORTERS = frozenset({"sidecar-full"})  # contenders that send spans to the OTLP receiver
WARM_UP_CALLS = 16  # and 4 streams (bench/loads.py warm_up)


@dataclass(frozen=True)
class FootprintSize:
    """How long each phase runs."""

    settle_seconds: float  # idle time after ready before the idle RSS is read
    closed_seconds: float  # closed loop of non-streaming calls
    open_rate: int  # open loop of non-streaming calls per second (0: skipped)
    open_seconds: float
    burst_streams: int  # concurrent streams before "RSS after load"
    # How long a phase may wait for its last spans: the span processor sends a partial batch
    # every 5 s by default (the smoke run waits less and may report fewer spans).
    flush_timeout: float = 12.0


@dataclass
class CallCost:
    """The proxy's CPU over one phase of non-streaming calls."""

    load: str  # "closed loop c64 (wrk)", "open loop 200/s"
    calls: int
    errors: int
    cpu_us_per_call: float | None
    spans_expected: int | None  # calls of the phase (and the warm-up); None: no span export
    spans_received: int | None


@dataclass
class Footprint:
    """One contender's memory and per-call cost."""

    contender: str
    idle_rss_bytes: int
    closed: CallCost
    open: CallCost | None
    rss_after_load_bytes: int
    peak_rss_bytes: int
    stream_errors: int


async def _await_spans(otlp: OtlpSink, target: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    received = await otlp.spans()
    while received < target and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        received = await otlp.spans()
    return received


async def _cost(
    load: Callable[[], Awaitable[tuple[str, int, int]]],
    pid: int,
    otlp: OtlpSink | None,
    spans_before: int,
    extra_spans: int,
    flush_timeout: float,
) -> CallCost:
    """Run `load`; the proxy's CPU over it (and, when it exports, until its spans arrived)."""
    clock = CpuClock()
    before = clock.seconds(pid)
    name, calls, errors = await load()
    expected = received = None
    if otlp is not None:
        expected = extra_spans + calls
        target = spans_before + expected
        received = await _await_spans(otlp, target, flush_timeout) - spans_before
    used = clock.seconds(pid) - before
    per_call = used / calls * 1e6 if calls else None
    return CallCost(name, calls, errors, per_call, expected, received)


async def footprint(
    contender: Contender, setting: Setting, otlp: OtlpSink, plan: FootprintSize
) -> Footprint:
    """Idle RSS; CPU per call, closed loop then open loop; RSS after a burst of streams."""
    running = await contender.start(setting, 0)
    try:
        pid = running.pid
        assert pid is not None, "footprint needs a proxy process"
        await running.wait_ready()
        await asyncio.sleep(plan.settle_seconds)
        idle = rss_bytes(pid)
        exporter = otlp if contender.name in EXPORTERS else None
        url = running.url
        async with loads.client_session() as session:

            async def closed() -> tuple[str, int, int]:
                if loads.wrk_available():
                    run = await loads.closed_loop_wrk(
                        url, CONCURRENCY, plan.closed_seconds, setting.cores.rest, setting.workdir
                    )
                else:
                    run = await loads.closed_loop_asyncio(
                        session, url, CONCURRENCY, plan.closed_seconds
                    )
                return f"closed loop c{CONCURRENCY} ({run.tool})", run.calls, run.errors

            async def opened() -> tuple[str, int, int]:
                run = await loads.open_loop(session, url, plan.open_rate, plan.open_seconds)
                return f"open loop {plan.open_rate}/s", len(run.seconds), run.errors

            # The warm-up's spans leave in the same batches as the measured calls' (the span
            # processor holds them up to 5 s): they are counted in, ~1% of the export's cost.
            spans_before = await otlp.spans()
            warm = WARM_UP_CALLS + 4 - await loads.warm_up(session, url, WARM_UP_CALLS)
            wait = plan.flush_timeout
            closed_cost = await _cost(closed, pid, exporter, spans_before, warm, wait)
            open_cost = None
            if plan.open_rate:
                spans_before = await otlp.spans()
                open_cost = await _cost(opened, pid, exporter, spans_before, 0, wait)
            streamed = await loads.streams(session, url, plan.burst_streams, plan.burst_streams)
        return Footprint(
            contender=contender.name,
            idle_rss_bytes=idle,
            closed=closed_cost,
            open=open_cost,
            rss_after_load_bytes=rss_bytes(pid),
            peak_rss_bytes=peak_rss_bytes(pid),
            stream_errors=streamed.errors,
        )
    finally:
        running.stop()


async def footprints(
    chosen: list[Contender], setting: Setting, otlp: OtlpSink, plan: FootprintSize
) -> list[Footprint]:
    """`footprint` of every contender, one after the other."""
    results = []
    for contender in chosen:
        print(f"footprint: {contender.name}", file=sys.stderr, flush=True)
        results.append(await footprint(contender, setting, otlp, plan))
    return results
