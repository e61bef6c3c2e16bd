"""`model-sidecar demo`: simulated providers, the sidecar, SDK traffic, a per-model summary."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import defaultdict
from typing import Any

from aiohttp import web

from sidecar.config import SidecarConfig
from sidecar.record import CallRecord
from sidecar.server import Sidecar

DEMO_KEY = "sk-demo-not-a-real-key"
PROMPTS = (
    "Summarise the incident report in two sentences.",
    "Classify this ticket: 'my invoice is wrong'.",
    "Write a haiku about tail latency.",
    "Translate 'good morning' to French.",
)


class SummarySink:
    """Keeps finished calls per model for the closing table."""

    name = "demo_summary"

    def __init__(self) -> None:
        self.by_model: dict[str, list[CallRecord]] = defaultdict(list)

    def call_started(self, record: CallRecord) -> None:
        return None

    def call_finished(self, record: CallRecord) -> None:
        self.by_model[record.request.request_model or "(none)"].append(record)

    def dropped(self, record: CallRecord) -> None:
        return None

    def close(self) -> None:
        return None


async def _openai_traffic(base: str, model: str, deadline: float, rng: random.Random) -> None:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=DEMO_KEY, max_retries=1)
    while time.monotonic() < deadline:
        prompt = rng.choice(PROMPTS)
        messages: Any = [{"role": "user", "content": prompt}]
        try:
            if rng.random() < 0.5:
                stream = await client.chat.completions.create(
                    model=model, messages=messages, stream=True
                )
                async for _ in stream:
                    pass
            else:
                await client.chat.completions.create(model=model, messages=messages, temperature=0)
        except openai.APIError:
            pass


async def _anthropic_traffic(base: str, model: str, deadline: float, rng: random.Random) -> None:
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=base, api_key=DEMO_KEY, max_retries=1)
    while time.monotonic() < deadline:
        messages: Any = [{"role": "user", "content": rng.choice(PROMPTS)}]
        try:
            if rng.random() < 0.5:
                async with client.messages.stream(
                    model=model, max_tokens=128, messages=messages
                ) as s:
                    async for _ in s:
                        pass
            else:
                await client.messages.create(model=model, max_tokens=128, messages=messages)
        except anthropic.APIError:
            pass


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _print_summary(sink: SummarySink, metrics_url: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="model-sidecar demo: what the sidecar measured, per model")
    for column in (
        "model",
        "calls",
        "p50 ms",
        "p95 ms",
        "p95 TTFT ms",
        "in tok",
        "out tok",
        "errors",
        "sidecar p50 µs",
    ):
        table.add_column(column, justify="right" if column != "model" else "left")
    for model, calls in sorted(sink.by_model.items()):
        durations = [c.duration * 1000 for c in calls]
        ttft = [c.time_to_first_chunk * 1000 for c in calls if c.time_to_first_chunk is not None]
        errors = sum(1 for c in calls if c.outcome != "ok")
        table.add_row(
            model,
            str(len(calls)),
            f"{_percentile(durations, 0.5):.0f}",
            f"{_percentile(durations, 0.95):.0f}",
            f"{_percentile(ttft, 0.95):.0f}" if ttft else "-",
            str(sum(c.input_tokens or 0 for c in calls)),
            str(sum(c.output_tokens or 0 for c in calls)),
            f"{errors} ({100 * errors / len(calls):.0f}%)",
            f"{statistics.median(c.overhead for c in calls) * 1e6:.0f}",
        )
    console = Console(width=max(120, Console().width))
    console.print(table)
    console.print(f"Prometheus metrics were served at {metrics_url}")


async def run_demo(seconds: float = 20.0) -> int:
    """Run simulator, sidecar and traffic for `seconds`, then print the summary."""
    from sidecar.simulate.server import Simulator

    sim = Simulator()
    sim_runner = web.AppRunner(sim.build_app(), access_log=None)
    await sim_runner.setup()
    await web.TCPSite(sim_runner, "127.0.0.1", 0).start()
    host, port = sim_runner.addresses[0][:2]
    sim_url = f"http://{host}:{port}"
    config = SidecarConfig.model_validate(
        {
            "listen": "127.0.0.1:0",
            "admin_listen": "127.0.0.1:0",
            "upstreams": {name: {"url": sim_url} for name in ("openai", "anthropic", "gemini")},
        }
    )
    summary = SummarySink()
    sidecar = Sidecar(config, extra_sinks=[summary], environ={})
    await sidecar.start()
    print(
        f"demo: simulated providers at {sim_url}; sidecar proxy {sidecar.proxy_url}, "
        f"metrics {sidecar.admin_url}/metrics; running {seconds:.0f} s of traffic"
    )
    rng = random.Random(7)
    deadline = time.monotonic() + seconds
    workers = [
        _openai_traffic(sidecar.proxy_url, "gpt-4o-mini", deadline, rng),
        _openai_traffic(sidecar.proxy_url, "gpt-4o-mini", deadline, rng),
        _openai_traffic(sidecar.proxy_url, "gpt-4.1-nano", deadline, rng),
        _anthropic_traffic(sidecar.proxy_url, "claude-sonnet-4", deadline, rng),
    ]
    await asyncio.gather(*workers)
    metrics_url = f"{sidecar.admin_url}/metrics"
    await sidecar.stop()
    await sim_runner.cleanup()
    _print_summary(summary, metrics_url)
    return 0
