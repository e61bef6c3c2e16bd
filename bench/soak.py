"""Soak: mixed traffic with faults through a real `model-sidecar serve`; nothing lost or grown.

Usage: python bench/soak.py [--minutes 10] [--rps 50]
Starts the simulator and the sidecar as subprocesses, sends a steady open-loop mix
(streaming and not; 503s, dropped streams, stalls, clients that leave mid-stream),
samples the sidecar's RSS, open file descriptors, asyncio tasks and series count
every 10 s, and checks at the end that every request got exactly one answer and that
the sidecar's request counter equals what the generator sent. Not a unit test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "soak"}]}
FAULTS = (
    # (share of calls, request headers, client leaves after the first chunk)
    (0.05, {"x-sim-status": "503"}, False),
    (0.02, {"x-sim-drop-after-chunks": "2", "x-sim-chunks": "6"}, False),
    (0.01, {"x-sim-stall-mid-stream-ms": "3000", "x-sim-chunks": "4"}, False),
    (0.01, {"x-sim-chunks": "20", "x-sim-chunk-interval-ms": "50"}, True),
)


@dataclass
class Sample:
    """One reading of the sidecar process."""

    elapsed: float
    rss_mib: float
    fds: int
    tasks: int
    series: int


@dataclass
class Tally:
    """What the generator sent and what came back."""

    sent: int = 0
    answers: Counter[str] = field(default_factory=Counter)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_process(pid: int) -> tuple[float, int]:
    """RSS in MiB and open file descriptors of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))


async def sample(http: aiohttp.ClientSession, admin: str, pid: int, start: float) -> Sample:
    rss, fds = read_process(pid)
    async with http.get(admin + "/status") as response:
        status = await response.json()
    async with http.get(admin + "/metrics") as response:
        metrics = await response.text()
    series = sum(1 for line in metrics.splitlines() if line and not line.startswith("#"))
    return Sample(time.monotonic() - start, rss, fds, status["asyncio_tasks"], series)


async def one_call(
    http: aiohttp.ClientSession, proxy: str, rng: random.Random, tally: Tally
) -> None:
    headers: dict[str, str] = {}
    leave_early = False
    roll = rng.random()
    for share, fault_headers, leaves in FAULTS:
        if roll < share:
            headers, leave_early = dict(fault_headers), leaves
            break
        roll -= share
    stream = leave_early or rng.random() < 0.5 or "x-sim-chunks" in headers
    tally.sent += 1
    try:
        async with http.post(
            proxy + "/v1/chat/completions", json={**BODY, "stream": stream}, headers=headers
        ) as response:
            if leave_early:
                await response.content.readany()
                response.close()
                tally.answers["left early"] += 1
                return
            await response.read()
            tally.answers[str(response.status)] += 1
    except aiohttp.ClientPayloadError:
        tally.answers["aborted stream"] += 1
    except aiohttp.ClientError as exc:
        tally.answers[type(exc).__name__] += 1


async def soak(minutes: float, rps: float) -> int:
    sim_port, proxy_port, admin_port = free_port(), free_port(), free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "sidecar.cli", "simulate", "--listen", f"127.0.0.1:{sim_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = Path(tempfile.mkdtemp()) / "soak.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{proxy_port}\nadmin_listen: 127.0.0.1:{admin_port}\n"
        f"upstreams:\n  openai: {{url: 'http://127.0.0.1:{sim_port}'}}\n"
        "limits: {read_timeout_seconds: 1}\nlog: {level: warning}\n"
    )
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "sidecar.cli", "serve", "--config", str(config)],
        stderr=subprocess.DEVNULL,
    )
    proxy, admin = f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{admin_port}"
    rng, tally, samples = random.Random(1), Tally(), []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as http:
            for _ in range(100):
                try:
                    async with http.get(admin + "/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            start = time.monotonic()
            next_sample = start
            tasks: set[asyncio.Task[None]] = set()
            sent = 0
            while (now := time.monotonic()) - start < minutes * 60:
                if now >= next_sample:
                    samples.append(await sample(http, admin, sidecar.pid, start))
                    print(json.dumps(samples[-1].__dict__), flush=True)
                    next_sample += 10
                due = start + sent / rps
                if due > now:
                    await asyncio.sleep(min(due - now, 0.05))
                    continue
                sent += 1
                task = asyncio.create_task(one_call(http, proxy, rng, tally))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
            await asyncio.sleep(1.5)
            samples.append(await sample(http, admin, sidecar.pid, start))
            async with http.get(admin + "/metrics") as response:
                metrics = await response.text()
    finally:
        sidecar.terminate()
        sim.terminate()
        sidecar.wait(30)
        sim.wait(30)
    recorded = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("model_sidecar_requests_total{")
    )
    answered = sum(tally.answers.values())
    print(report(samples, tally, recorded, answered, minutes, rps))
    return 0 if answered == tally.sent == recorded else 1


def slope_per_hour(samples: list[Sample], attribute: str) -> float:
    """Least-squares slope of a sampled value, per hour, over the second half of the run."""
    half = samples[len(samples) // 2 :]
    xs = [s.elapsed for s in half]
    ys = [float(getattr(s, attribute)) for s in half]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs) or 1.0
    return (
        sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / denominator * 3600
    )


def report(
    samples: list[Sample], tally: Tally, recorded: float, answered: int, minutes: float, rps: float
) -> str:
    first, last = samples[1] if len(samples) > 1 else samples[0], samples[-1]
    lines = [
        f"soak: {minutes:g} min at {rps:g} calls/s, {tally.sent} calls sent",
        f"answers: {dict(tally.answers)}",
        f"every call answered once: {answered == tally.sent}; "
        f"sidecar recorded {recorded:.0f} of {tally.sent}",
        "| reading | after 10 s | at the end | slope over the 2nd half (per hour) |",
        "|---|---|---|---|",
    ]
    for name, unit in (("rss_mib", "MiB"), ("fds", ""), ("tasks", ""), ("series", "")):
        lines.append(
            f"| {name} | {getattr(first, name):.1f} {unit} | {getattr(last, name):.1f} {unit} | "
            f"{slope_per_hour(samples, name):+.2f} {unit} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rps", type=float, default=50.0)
    args = parser.parse_args()
    return asyncio.run(soak(args.minutes, args.rps))


if __name__ == "__main__":
    raise SystemExit(main())
