"""What metrics over OTLP cost per call (issue #19), measured three ways:

1. in process, the per-call recording: the Prometheus sink's `call_finished` in each convention
   mode, against the OpenTelemetry SDK recording the same observations (same instruments,
   same attributes) through its own instruments — the path the sidecar does not take;
2. in process, one OTLP export of a registry holding many series (collect, convert, encode),
   and what it costs per call at the default 60 s interval at a few call rates;
3. end to end: `model-sidecar serve` pinned to its own core under a closed loop (wrk -c64),
   its CPU per call with OTLP metrics off and on (exported every `--interval-ms`, default
   1 s: 60 times the default rate, an upper bound), to bench/otlp_sink.py.

    python -m bench.otlp_metrics [--seconds 5] [--repetitions 3] [--interval-ms 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from bench import loads
from bench.contenders import child_environ, sidecar_argv
from bench.procs import Child, CpuClock, free_port, pin_argv, plan_cores
from bench.run import start_upstream
from bench.telemetry import OtlpSink
from sidecar.config.models import TelemetryConfig
from sidecar.record import CallRecord, RequestInfo
from sidecar.telemetry import conventions as c
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.otlp_metrics import OtlpMetricsExporter
from sidecar.telemetry.prometheus import PrometheusSink
from sidecar.telemetry.registry import MetricRegistry

MODES = {"v1.41": (c.V1_41,), "latest": (c.GENAI,), "dup": (c.V1_41, c.GENAI)}
CALLS = 20000
RATES = (10, 100, 1000)  # calls per second, for the per-call share of one export


def chat_call(model: str = "gpt-4o-mini") -> CallRecord:
    """A finished non-streaming chat call with usage, as the bench upstream answers it."""
    record = CallRecord(
        upstream="openai",
        protocol="openai",
        provider_name="openai",
        method="POST",
        path="/v1/chat/completions",
        server_address="127.0.0.1",
        server_port=80,
        request=RequestInfo(operation="chat", request_model=model),
    )
    record.received, record.end, record.upstream_wait = 1.0, 1.004, 0.0039
    record.http_status = 200
    record.response_model = model
    record.input_tokens, record.output_tokens = 12, 20
    record.cost_usd = 0.00001
    return record


def thread_us(work: Callable[[], None], repeat: int) -> float:
    """The calling thread's CPU per `work()`, in µs (best of three rounds)."""
    rounds = []
    for _ in range(3):
        start = time.thread_time_ns()
        for _ in range(repeat):
            work()
        rounds.append((time.thread_time_ns() - start) / repeat / 1000)
    return min(rounds)


def prometheus_us(mode: str) -> float:
    """The Prometheus sink's CPU per finished call in `mode`."""
    sink = PrometheusSink(MetricRegistry(TelemetryConfig(), TelemetryDrops(), MODES[mode]))
    record = chat_call()
    return thread_us(lambda: sink.call_finished(record), CALLS)


def sdk_us(mode: str) -> float:
    """The OpenTelemetry SDK's CPU for the same observations of one call: one SDK instrument
    per table instrument, each recorded as often as the sink records it, with the call's
    attributes (what recording per call through the SDK would cost on the call path)."""
    record = chat_call()
    generations = MODES[mode]
    views = [
        View(instrument_name=i.otel_name, aggregation=ExplicitBucketHistogramAggregation(i.buckets))
        for i in c.metrics_for(generations)
        if i.kind == c.HISTOGRAM
    ]
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()], views=views)
    meter = provider.get_meter("bench")
    common = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "upstream": "openai",
        "experiment": "",
        "variant": "",
    }
    steps: list[Callable[[], None]] = []

    def histogram(instrument: c.Instrument, value: float, **extra: str) -> None:
        sdk = meter.create_histogram(instrument.otel_name, unit=instrument.unit)
        attributes = {**common, **extra}
        steps.append(lambda: sdk.record(value, attributes))

    def counter(instrument: c.Instrument, value: float, **extra: str) -> None:
        sdk = meter.create_counter(instrument.otel_name, unit=instrument.unit)
        attributes = {**common, **extra}
        steps.append(lambda: sdk.add(value, attributes))

    counter(c.REQUESTS, 1, outcome="ok", http_status_code="200")
    histogram(c.OVERHEAD, record.overhead)
    counter(c.TOKENS, 12, **{"gen_ai.token.type": "input"})
    counter(c.TOKENS, 20, **{"gen_ai.token.type": "output"})
    counter(c.COST, 0.00001)
    for recording in c.recordings_for(generations):
        if "chat" not in recording.operations:
            continue
        instrument = recording.instrument
        if recording.measure == c.DURATION:
            histogram(instrument, record.duration, **{"error.type": ""})
        elif recording.measure == c.TOKENS_BY_TYPE:
            histogram(instrument, 12, **{"gen_ai.token.type": "input"})
            histogram(instrument, 20, **{"gen_ai.token.type": "output"})
        elif recording.measure == c.USAGE:
            counter(instrument, 1, **{"gen_ai.token.modality": "unknown"})
        elif recording.measure == c.PER_OPERATION:
            histogram(instrument, 12)

    def record_all() -> None:
        for step in steps:
            step()

    return thread_us(record_all, CALLS)


def export_cost(models: int) -> tuple[int, float]:
    """(data points, CPU ms) of one collect-convert-encode of a dup-mode registry holding the
    series of `models` models (each with ok calls and a 429)."""
    metrics = MetricRegistry(TelemetryConfig(), TelemetryDrops(), MODES["dup"])
    sink = PrometheusSink(metrics)
    for index in range(models):
        ok = chat_call(f"model-{index}")
        failed = chat_call(f"model-{index}")
        failed.outcome, failed.http_status = "upstream_error", 429
        for record in (ok, failed):
            sink.call_started(record)
            sink.call_finished(record)
    exporter = OtlpMetricsExporter(metrics, _NullExporter(), _resource())
    data = exporter.collect()
    points = sum(
        len(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    )
    start = time.thread_time_ns()
    rounds = 20
    for _ in range(rounds):
        encode_metrics(exporter.collect()).SerializeToString()
    return points, (time.thread_time_ns() - start) / rounds / 1e6


class _NullExporter(MetricExporter):
    """Stands in for the OTLP exporter where only collecting and encoding are measured."""

    def export(self, *args: Any, **kwargs: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 0) -> bool:
        return True

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        return None


def _resource() -> Any:
    from sidecar.telemetry.otlp_settings import resource_from_environ

    return resource_from_environ({})


async def end_to_end(seconds: float, repetitions: int, interval_ms: int) -> dict[str, list[float]]:
    """CPU µs per call of a pinned `model-sidecar serve` under wrk, OTLP metrics off and on."""
    cores = plan_cores()
    workdir = Path(tempfile.mkdtemp(prefix="bench-otlp-metrics-"))
    upstream, upstream_url = await start_upstream("tiny", workdir, cores, 5.0)
    sink = OtlpSink(workdir, cores.rest)
    await sink.start()
    results: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for repetition in range(repetitions):
            for variant in ("off", "on") if repetition % 2 == 0 else ("on", "off"):
                results[variant].append(
                    await _one_run(
                        variant, workdir, cores, upstream_url, sink, seconds, interval_ms
                    )
                )
    finally:
        sink.stop()
        upstream.stop()
    return results


async def _one_run(
    variant: str,
    workdir: Path,
    cores: Any,
    upstream_url: str,
    sink: OtlpSink,
    seconds: float,
    interval_ms: int,
) -> float:
    port, admin = free_port(), free_port()
    config = {
        "listen": f"127.0.0.1:{port}",
        "admin_listen": f"127.0.0.1:{admin}",
        "upstreams": {"openai": {"url": upstream_url}},
        "telemetry": {"semconv_stability_opt_in": "gen_ai_latest_experimental/dup"},
    }
    path = workdir / f"sidecar-{variant}.yaml"
    path.write_text(yaml.safe_dump(config))
    extra = {}
    if variant == "on":
        extra = {
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{sink.url}/v1/metrics",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            "OTEL_METRIC_EXPORT_INTERVAL": str(interval_ms),
        }
    child = Child(
        f"sidecar-{variant}",
        pin_argv(sidecar_argv(path), cores.proxy),
        workdir / f"sidecar-{variant}.log",
        env=child_environ(extra),
    )
    try:
        await child.wait_for_port(admin, timeout=30)
        url = f"http://127.0.0.1:{port}"
        async with loads.client_session() as session:
            await loads.warm_up(session, url, 16)
            exports_before = await sink.metric_exports()
            clock = CpuClock()
            assert child.pid is not None
            before = clock.seconds(child.pid)
            if loads.wrk_available():
                run = await loads.closed_loop_wrk(url, 64, seconds, cores.rest, workdir)
            else:
                run = await loads.closed_loop_asyncio(session, url, 64, seconds)
            used = clock.seconds(child.pid) - before
        exports = await sink.metric_exports() - exports_before
        if variant == "on":
            assert exports >= max(1, int(seconds * 1000 / interval_ms) - 1), exports
        print(
            f"  {variant}: {run.calls} calls ({run.tool}), {exports} exports, "
            f"{used / run.calls * 1e6:.1f} µs/call",
            file=sys.stderr,
        )
        return used / run.calls * 1e6
    finally:
        child.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--interval-ms", type=int, default=1000)
    args = parser.parse_args()

    print("| mode | Prometheus sink µs/call | SDK recording µs/call | SDK / sink |")
    print("|---|---:|---:|---:|")
    for mode in MODES:
        prometheus, sdk = prometheus_us(mode), sdk_us(mode)
        print(f"| {mode} | {prometheus:.1f} | {sdk:.1f} | {sdk / prometheus:.1f}x |")
    print()
    print("| models | data points | one export (collect + encode) ms | " +
          " | ".join(f"µs/call at {rate}/s, 60 s" for rate in RATES) + " |")  # fmt: skip
    print("|---:|---:|---:|" + "---:|" * len(RATES))
    for models in (10, 100):
        points, ms = export_cost(models)
        shares = " | ".join(f"{ms * 1000 / (rate * 60):.3f}" for rate in RATES)
        print(f"| {models} | {points} | {ms:.1f} | {shares} |")
    print()
    results = asyncio.run(end_to_end(args.seconds, args.repetitions, args.interval_ms))
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    print(
        f"| sidecar CPU µs/call (wrk c64, {args.seconds:g} s, median of {args.repetitions}) "
        f"| OTLP metrics off | on, every {args.interval_ms} ms | difference |"
    )
    print("|---|---:|---:|---:|")
    print(f"| dup mode | {off:.1f} | {on:.1f} | {on - off:+.1f} ({(on - off) / off:+.1%}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
