"""The loads: open-loop fixed rates, closed-loop maximum throughput, and SSE streams.

Every timestamp is `time.perf_counter()` (uvloop's `loop.time()` has millisecond
resolution). Open-loop latency runs from each call's *intended* send time, so a
generator that falls behind never hides queueing (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

CHAT_PATH = "/v1/chat/completions"
REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello in twenty words."}],
    "max_tokens": 64,
    "logprobs": True,
}
BODY = orjson.dumps(REQUEST)
STREAM_BODY = orjson.dumps({**REQUEST, "stream": True})
# Not a credential: the key every contender sees, and LiteLLM's master key (it refuses to
# start without a strong one).
BENCH_KEY = "sk-bench-" + hashlib.sha256(b"model-sidecar-bench").hexdigest()
HEADERS = {
    "Content-Type": "application/json",
    "Authorization": f"Bearer {BENCH_KEY}",
    "x-stainless-retry-count": "0",
}
CONTENT_EVENT = b'"content":"'
FAILURES = (aiohttp.ClientError, OSError, TimeoutError)


@dataclass
class Latencies:
    """One open-loop run: latency of every successful call, in seconds."""

    offered: int
    seconds: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class Throughput:
    """One closed-loop run."""

    calls: int
    seconds: float
    errors: int
    tool: str

    @property
    def per_second(self) -> float:
        """Completed calls per second."""
        return self.calls / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Streams:
    """One streaming run: per stream, time to first chunk and total, in seconds."""

    ttfc: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    content_events: int = 0
    held_back: int = 0  # content events that arrived in the same read as an earlier one
    errors: int = 0


def client_session() -> aiohttp.ClientSession:
    """A pooled client session for one contender."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        timeout=aiohttp.ClientTimeout(total=30),
        skip_auto_headers=("User-Agent",),
    )


async def _call(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.post(url, data=BODY, headers=HEADERS) as response:
            await response.read()
            return response.status == 200
    except FAILURES:
        return False


async def open_loop(
    session: aiohttp.ClientSession, base_url: str, rate: float, seconds: float
) -> Latencies:
    """Send calls at `rate` per second for `seconds`, each on its own schedule."""
    url = base_url + CHAT_PATH
    result = Latencies(offered=max(1, round(rate * seconds)))

    async def one(intended: float) -> None:
        if await _call(session, url):
            result.seconds.append(time.perf_counter() - intended)
        else:
            result.errors += 1

    tasks = []
    start = time.perf_counter() + 0.005
    for index in range(result.offered):
        intended = start + index / rate
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(intended)))
    await asyncio.gather(*tasks)
    return result


async def closed_loop_asyncio(
    session: aiohttp.ClientSession, base_url: str, concurrency: int, seconds: float
) -> Throughput:
    """`concurrency` workers calling back to back (the fallback when wrk is missing)."""
    url = base_url + CHAT_PATH
    calls = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal calls, errors
        while time.perf_counter() < deadline:
            if await _call(session, url):
                calls += 1
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Throughput(calls, time.perf_counter() - started, errors, "asyncio")


WRK_SCRIPT = """wrk.method = "POST"
wrk.body = {body}
{headers}
"""
_WRK_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b")
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk_available() -> bool:
    """Whether the wrk binary is on PATH."""
    return shutil.which("wrk") is not None


def parse_wrk(output: str) -> Throughput:
    """Calls, duration and errors from wrk's report."""
    match = _WRK_REQUESTS.search(output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    requests = int(match.group(1))
    seconds = float(match.group(2)) * _UNIT_SECONDS[match.group(3)]
    errors = 0
    if non_2xx := _WRK_NON_2XX.search(output):
        errors += int(non_2xx.group(1))
    if socket_errors := _WRK_SOCKET.search(output):
        # Read errors at the very end are wrk closing its connections; count the others.
        errors += sum(int(socket_errors.group(n)) for n in (1, 3, 4))
    return Throughput(requests - errors, seconds, errors, "wrk")


async def closed_loop_wrk(
    base_url: str, concurrency: int, seconds: float, cores: Sequence[int], workdir: Path
) -> Throughput:
    """wrk with one thread and `concurrency` keep-alive connections, pinned to `cores`."""
    from bench.procs import pin_argv

    script = workdir / "post.lua"
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in HEADERS.items())
    body = '"' + BODY.decode().replace("\\", "\\\\").replace('"', '\\"') + '"'
    script.write_text(WRK_SCRIPT.format(body=body, headers=headers))
    argv = pin_argv(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "-s",
            str(script),
            base_url + CHAT_PATH,
        ],
        cores,
    )
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return parse_wrk(output.decode(errors="replace"))


async def streams(
    session: aiohttp.ClientSession, base_url: str, concurrency: int, count: int
) -> Streams:
    """`count` streamed calls, `concurrency` at a time, timing each read."""
    url = base_url + CHAT_PATH
    result = Streams()
    remaining = count

    async def one() -> None:
        started = time.perf_counter()
        first: float | None = None
        events = reads = 0
        try:
            async with session.post(url, data=STREAM_BODY, headers=HEADERS) as response:
                async for data in response.content.iter_any():
                    now = time.perf_counter()
                    if first is None:
                        first = now
                    found = data.count(CONTENT_EVENT)
                    if found:
                        events += found
                        reads += 1
                ok = response.status == 200
        except FAILURES:
            ok = False
        if not ok or first is None:
            result.errors += 1
            return
        result.ttfc.append(first - started)
        result.total.append(time.perf_counter() - started)
        result.content_events += events
        result.held_back += events - reads

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


async def warm_up(session: aiohttp.ClientSession, base_url: str, calls: int) -> int:
    """A few calls and streams to open connections and fill caches; the number that failed."""
    url = base_url + CHAT_PATH
    results = await asyncio.gather(*(_call(session, url) for _ in range(calls)))
    streamed = await streams(session, base_url, 4, 4)
    return results.count(False) + streamed.errors
