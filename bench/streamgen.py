"""One load-generator process for held streams: `python -m bench.streamgen`, job on stdin.

bench/long_streams.py starts several of these (one asyncio loop each, its own connections)
so that a single client loop is never what limits 1,000 concurrent streams. The job names
the proxy, the request, and this process's slots (start offsets); it comes as the first
line of stdin, a JSON object (an argument is limited to 128 KiB). The process prints
`ready`, waits for the start time (a `time.monotonic()` value, the same clock in every
process) on its next line, runs each slot's streams back to back on one keep-alive connection,
and prints one JSON line: every stream's time to first chunk, chunks, gaps, errors, and
its own CPU seconds (so a saturated generator shows). A slot's first stream is timed from
its scheduled start (connect included) and kept apart: those start while the others ramp up.

A raw asyncio protocol with httptools (a dependency of the sidecar) rather than aiohttp:
the client's cost per chunk is a fraction of a proxy's, so the proxy is what is measured.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import httptools

CONTENT_EVENT = b'"content":"'
CARRY = len(CONTENT_EVENT) - 1


@dataclass
class Tally:
    """What one generator process saw."""

    first_ttfc: list[float] = field(default_factory=list)  # seconds: each slot's first stream
    ttfc: list[float] = field(default_factory=list)  # seconds: the later streams (N held)
    streams: int = 0
    chunks: int = 0  # content events received
    max_gap: float = 0.0  # longest pause between two reads that carried content
    stalls: int = 0  # pauses longer than the job's stall threshold
    errors: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    lags: list[float] = field(default_factory=list)  # lateness of a 10 ms tick, seconds

    def error(self, kind: str) -> None:
        """Count one failed stream."""
        self.errors[kind] = self.errors.get(kind, 0) + 1


class StreamClient(asyncio.Protocol):
    """One keep-alive connection carrying one stream at a time."""

    def __init__(self, tally: Tally, stall_gap: float) -> None:
        self.tally = tally
        self.stall_gap = stall_gap
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[str] | None = None
        self.now = 0.0
        self.first: float | None = None
        self.last_event: float | None = None
        self.carry = b""
        self.events = 0
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._finish("connection lost")

    def send(self, payload: bytes) -> asyncio.Future[str]:
        """Send one request; the future says "ok" or what went wrong."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.parser = httptools.HttpResponseParser(self)
        self.first = self.last_event = None
        self.carry = b""
        self.events = 0
        self.transport.write(payload)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.now = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._finish("bad response")
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        now = self.now
        if self.first is None:
            self.first = now
        window = self.carry + body
        found = window.count(CONTENT_EVENT)
        self.carry = window[-CARRY:]
        if not found:
            return
        if self.last_event is not None:
            gap = now - self.last_event
            if gap > self.tally.max_gap:
                self.tally.max_gap = gap
            if gap > self.stall_gap:
                self.tally.stalls += 1
        self.last_event = now
        self.events += found

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        status = self.parser.get_status_code()
        self._finish("ok" if status == 200 else f"status {status}")

    def _finish(self, outcome: str) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(outcome)


@dataclass(frozen=True)
class Job:
    """What one generator process runs (decoded from its command line)."""

    host: str
    port: int
    request: str  # the whole HTTP request, latin-1
    offsets: list[float]  # start of each slot after the common start time, seconds
    rounds: int  # streams per slot, back to back
    chunks: int  # content events every stream must deliver
    stall_gap: float  # seconds
    timeout: float  # seconds per stream


async def run_slot(job: Job, tally: Tally, start: float, payload: bytes) -> None:
    """One slot: its streams back to back on one connection (reconnecting when closed)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    client: StreamClient | None = None
    began = start  # the first stream is timed from its scheduled start (connect included)
    for round_ in range(job.rounds):
        if client is None or client.transport is None or not client.keep_alive:
            if client is not None and client.transport is not None:
                client.transport.close()
            try:
                _, client = await loop.create_connection(
                    lambda: StreamClient(tally, job.stall_gap), job.host, job.port
                )
            except OSError:
                tally.error("connect")
                client = None
                began = time.monotonic()
                continue
        try:
            outcome = await asyncio.wait_for(client.send(payload), job.timeout)
        except TimeoutError:
            outcome = "timeout"
        tally.streams += 1
        tally.chunks += client.events
        if outcome == "ok" and client.first is None:
            outcome = "no body"
        elif outcome == "ok" and client.events != job.chunks:
            outcome = "chunks missing"
        if outcome != "ok" or client.first is None:
            tally.error(outcome)
            if client.transport is not None:
                client.transport.close()
            client = None
        else:
            (tally.ttfc if round_ else tally.first_ttfc).append(client.first - began)
        began = time.monotonic()
    if client is not None and client.transport is not None:
        client.transport.close()


async def watch_lag(tally: Tally, period: float = 0.01) -> None:
    """How late this process's loop wakes up: a busy generator delays every timestamp."""
    while True:
        intended = time.monotonic() + period
        await asyncio.sleep(period)
        tally.lags.append(max(0.0, time.monotonic() - intended))


async def run(job: Job) -> Tally:
    """Print `ready`, wait for the start time on stdin, run every slot."""
    tally = Tally()
    payload = job.request.encode("latin-1")
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    start = float(line)
    cpu_before = time.process_time()
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    watcher = asyncio.create_task(watch_lag(tally))
    await asyncio.gather(*(run_slot(job, tally, start + o, payload) for o in job.offsets))
    watcher.cancel()
    tally.cpu_seconds = time.process_time() - cpu_before
    tally.wall_seconds = time.monotonic() - start
    return tally


def main() -> None:
    """`python -m bench.streamgen`: the job on stdin, one JSON line of results on stdout."""
    fields: dict[str, Any] = json.loads(sys.stdin.readline())
    job = Job(**fields)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = len(job.offsets) + 64
    if soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        import uvloop
    except ImportError:
        tally = asyncio.run(run(job))
    else:
        tally = uvloop.run(run(job))
    print(json.dumps(asdict(tally)), flush=True)


if __name__ == "__main__":
    main()
