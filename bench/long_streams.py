"""Held streams (issue #23): N concurrent long SSE streams through one contender.

N slots, each a keep-alive connection running `rounds` streams back to back; slot i starts
i/N of a stream's length after the common start, so arrivals are spread evenly and, after
the first stream's length, N streams are held at every moment. The slots are shared out
over several bench/streamgen.py processes pinned to the load generator's core(s).
Measured per contender: the proxy's CPU per chunk delivered (its CPU-time clock, before and
after), errors, stalls (a pause between two chunks above the threshold), time to first
chunk of the streams that start while N are held (every slot's second stream on; the first
ones, timed from their scheduled start with the connect, are reported apart), the proxy's
peak RSS, and the generator's own CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from bench.contenders import Contender, Running, Setting
from bench.loads import BODY, CHAT_PATH, HEADERS, STREAM_BODY
from bench.procs import Child, CpuClock, listen_drops, peak_rss_bytes, pin_argv, preemptions
from bench.report import quantile

REPO = Path(__file__).resolve().parent.parent
# Share of the generator's core(s) busy (generators + upstream) above which the client side,
# not the proxy, may be what limits the run.
SATURATED = 0.85
WARM_UP_CALLS = 16  # non-streaming: lazy imports done, upstream connections open


@dataclass(frozen=True)
class StreamShape:
    """How long each stream is and how many of them are held."""

    chunks: int
    interval_ms: float
    rounds: int
    generators: int  # load-generator processes (0: one per generator core, at least 2)

    @property
    def seconds(self) -> float:
        """One stream's length."""
        return self.chunks * self.interval_ms / 1000

    @property
    def stall_gap(self) -> float:
        """A pause between chunks above this is a stall: 10 intervals, at least 100 ms."""
        return max(10 * self.interval_ms / 1000, 0.1)


@dataclass
class HeldStreams:
    """One contender at one level of concurrency."""

    contender: str
    concurrency: int
    streams: int = 0
    chunks: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    stalls: int = 0
    max_gap_ms: float = 0.0
    ttfc_ms: list[float] = field(default_factory=list)  # streams started with N held
    first_ttfc_ms: list[float] = field(default_factory=list)  # each slot's first (connect)
    proxy_cpu_seconds: float | None = None
    peak_rss_bytes: int | None = None
    generator_cpu_seconds: float = 0.0
    upstream_cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    generator_cores: int = 1
    generators: int = 1  # processes
    listen_drops: int | None = None  # SYNs dropped by full listen queues during the run
    proxy_preemptions: int | None = None  # the proxy taken off its core while runnable
    generator_lag_ms: list[float] = field(default_factory=list)  # 10 ms ticks, how late
    lag_limit_ms: float = 10.0  # a generator lagging more than this (p99) is saturated

    @property
    def error_count(self) -> int:
        """Streams that failed, whatever the reason."""
        return sum(self.errors.values())

    @property
    def cpu_us_per_chunk(self) -> float | None:
        """The proxy's CPU per chunk delivered, µs."""
        if self.proxy_cpu_seconds is None or not self.chunks:
            return None
        return self.proxy_cpu_seconds / self.chunks * 1e6

    @property
    def proxy_busy(self) -> float | None:
        """Share of its one core the proxy used: near 100% it, not the load, sets the pace."""
        if self.proxy_cpu_seconds is None or self.wall_seconds <= 0:
            return None
        return self.proxy_cpu_seconds / self.wall_seconds

    @property
    def generator_busy(self) -> float:
        """Share of the generator's core(s) used by the generators and the upstream."""
        if self.wall_seconds <= 0:
            return 0.0
        used = self.generator_cpu_seconds + self.upstream_cpu_seconds
        return used / (self.wall_seconds * self.generator_cores)

    @property
    def generator_lag_p99_ms(self) -> float:
        """How late the generators' loops woke up, p99."""
        return quantile(self.generator_lag_ms, 0.99)

    @property
    def generator_saturated(self) -> bool:
        """Whether the client side may have been the bottleneck (or its timestamps late)."""
        return self.generator_busy > SATURATED or self.generator_lag_p99_ms > self.lag_limit_ms


def _request(url: str) -> str:
    parts = urlsplit(url)
    head = [f"POST {CHAT_PATH} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{k}: {v}" for k, v in HEADERS.items()]
    head.append(f"Content-Length: {len(STREAM_BODY)}")
    return "\r\n".join(head) + "\r\n\r\n" + STREAM_BODY.decode("latin-1")


def generator_count(shape: StreamShape, cores: tuple[int, ...]) -> int:
    """How many generator processes share the slots."""
    return shape.generators or max(2, len(cores))


async def _start_generators(
    url: str, concurrency: int, shape: StreamShape, cores: tuple[int, ...], workdir: Path
) -> list[asyncio.subprocess.Process]:
    """Start the generator processes and wait until each has printed `ready`."""
    count = max(1, min(generator_count(shape, cores), concurrency))
    processes: list[asyncio.subprocess.Process] = []
    try:
        await _spawn(processes, url, concurrency, count, shape, cores, workdir)
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            if line.strip() != b"ready":
                raise RuntimeError(f"a stream generator did not start (see {workdir})")
    except BaseException:
        await _kill(processes)
        raise
    return processes


async def _kill(processes: list[asyncio.subprocess.Process]) -> None:
    """Kill whatever generator has not exited yet."""
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


async def _spawn(
    processes: list[asyncio.subprocess.Process],
    url: str,
    concurrency: int,
    count: int,
    shape: StreamShape,
    cores: tuple[int, ...],
    workdir: Path,
) -> None:
    """Start `count` generators, each added to `processes` at once (a failure kills them)."""
    parts = urlsplit(url)
    spacing = shape.seconds / concurrency
    for index in range(count):
        job = {
            "host": parts.hostname,
            "port": parts.port,
            "request": _request(url),
            "offsets": [slot * spacing for slot in range(index, concurrency, count)],
            "rounds": shape.rounds,
            "chunks": shape.chunks,
            "stall_gap": shape.stall_gap,
            "timeout": shape.seconds * 5 + 30,
        }
        argv = pin_argv([sys.executable, "-m", "bench.streamgen"], cores)
        with open(workdir / f"streamgen-{index}.log", "ab") as log:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=log, cwd=REPO,
            )  # fmt: skip
        processes.append(process)
        assert process.stdin is not None
        process.stdin.write(json.dumps(job).encode() + b"\n")
        await process.stdin.drain()


async def warm_up(url: str) -> None:
    """A few concurrent non-streaming calls before the measured streams."""
    async with aiohttp.ClientSession() as http:

        async def one() -> None:
            async with http.post(url + CHAT_PATH, data=BODY, headers=HEADERS) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"warm-up call to {url} answered {response.status}")

        await asyncio.gather(*(one() for _ in range(WARM_UP_CALLS)))


async def hold(
    running: Running,
    name: str,
    concurrency: int,
    shape: StreamShape,
    cores: tuple[int, ...],
    upstream: Child,
    workdir: Path,
) -> HeldStreams:
    """Run `concurrency` held streams against a started contender."""
    clock = CpuClock()
    result = HeldStreams(
        name, concurrency, generator_cores=max(1, len(cores)), lag_limit_ms=shape.interval_ms / 2
    )
    processes = await _start_generators(running.url, concurrency, shape, cores, workdir)
    result.generators = len(processes)
    try:
        drops_before = listen_drops()
        start = time.monotonic() + 0.2
        proxy_before = clock.seconds(running.pid) if running.pid else None
        preempted_before = preemptions(running.pid) if running.pid else 0
        upstream_before = clock.seconds(upstream.pid)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(f"{start!r}\n".encode())
            await process.stdin.drain()
        outputs = await asyncio.gather(*(p.communicate() for p in processes))
        if running.pid and proxy_before is not None:
            result.proxy_cpu_seconds = clock.seconds(running.pid) - proxy_before
            result.peak_rss_bytes = peak_rss_bytes(running.pid)
            result.proxy_preemptions = preemptions(running.pid) - preempted_before
        result.upstream_cpu_seconds = clock.seconds(upstream.pid) - upstream_before
        drops_after = listen_drops()
        if drops_before is not None and drops_after is not None:
            result.listen_drops = drops_after - drops_before
    finally:
        await _kill(processes)
    for stdout, _ in outputs:
        lines = stdout.decode().strip().splitlines()
        if not lines:
            raise RuntimeError(f"a stream generator printed no result (see {workdir})")
        tally = json.loads(lines[-1])
        result.streams += tally["streams"]
        result.chunks += tally["chunks"]
        result.stalls += tally["stalls"]
        result.max_gap_ms = max(result.max_gap_ms, tally["max_gap"] * 1e3)
        result.ttfc_ms += [t * 1e3 for t in tally["ttfc"]]
        result.first_ttfc_ms += [t * 1e3 for t in tally["first_ttfc"]]
        for kind, count in tally["errors"].items():
            result.errors[kind] = result.errors.get(kind, 0) + count
        result.generator_cpu_seconds += tally["cpu_seconds"]
        result.generator_lag_ms += [lag * 1e3 for lag in tally["lags"]]
        result.wall_seconds = max(result.wall_seconds, tally["wall_seconds"])
    return result


async def held_streams(
    chosen: list[Contender],
    setting: Setting,
    levels: tuple[int, ...],
    shape: StreamShape,
    upstream: Child,
    upstream_url: str,
) -> list[HeldStreams]:
    """Every level against every contender, each run on a freshly started process."""
    results = []
    long_setting = replace(setting, upstream_url=upstream_url)
    cores = setting.cores.spare or setting.cores.rest
    for level in levels:
        for contender in chosen:
            print(f"held streams c{level}: {contender.name}", file=sys.stderr, flush=True)
            running = await contender.start(long_setting, level)
            try:
                await running.wait_ready()
                await warm_up(running.url)
                results.append(
                    await hold(
                        running, contender.name, level, shape, cores, upstream,
                        setting.workdir,
                    )
                )  # fmt: skip
            finally:
                running.stop()
    return results
