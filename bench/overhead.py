"""The sidecar's own time per call (p50, p99), read from the CallRecords of N non-streaming calls.

Usage: python bench/overhead.py [--calls 1000] [--concurrency 1] [--stream]
A quick local check, not the side-by-side benchmark: simulator, sidecar and client
share one process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import aiohttp
from aiohttp import web

from sidecar.app import Sidecar
from sidecar.cli import run_async
from sidecar.config.models import SidecarConfig
from sidecar.record import CallRecord
from sidecar.simulate.simulator import Simulator


class OverheadSink:
    """Keeps each finished call's record."""

    name = "overhead"

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def call_started(self, record: CallRecord) -> None:
        return None

    def call_finished(self, record: CallRecord) -> None:
        self.records.append(record)

    def dropped(self, record: CallRecord) -> None:
        return None

    def close(self) -> None:
        return None


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(calls: int, concurrency: int, stream: bool) -> int:
    runner = web.AppRunner(Simulator(fastest=True).build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    upstream = f"http://{host}:{port}"
    config = SidecarConfig.model_validate(
        {
            "listen": "127.0.0.1:0",
            "admin_listen": "127.0.0.1:0",
            "upstreams": {n: {"url": upstream} for n in ("openai", "anthropic", "gemini")},
        }
    )
    sink = OverheadSink()
    sidecar = Sidecar(config, extra_sinks=[sink], environ={})
    await sidecar.start()
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    }
    remaining = calls

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with http.post(sidecar.proxy_url + "/v1/chat/completions", json=body) as r:
                await r.read()

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    while len(sink.records) < calls:
        await asyncio.sleep(0.01)
    await sidecar.stop()
    await runner.cleanup()
    overhead = [r.overhead * 1e6 for r in sink.records]
    total = [r.duration * 1e6 for r in sink.records]
    print(f"{calls} {'streaming' if stream else 'non-streaming'} calls, concurrency {concurrency}")
    print(
        f"sidecar's own time per call: p50 {quantile(overhead, 0.5):.0f} µs, "
        f"p99 {quantile(overhead, 0.99):.0f} µs, mean {statistics.mean(overhead):.0f} µs"
    )
    print(f"whole call as the sidecar saw it: p50 {quantile(total, 0.5):.0f} µs")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    return run_async(measure(args.calls, args.concurrency, args.stream))


if __name__ == "__main__":
    raise SystemExit(main())
