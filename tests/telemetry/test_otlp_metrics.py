"""Metrics over OTLP: a real OTLP receiver (gRPC and HTTP/protobuf) gets the registry's
metrics with the mode's OpenTelemetry names, units, attribute keys and cumulative temporality,
the same values /metrics serves; opt-in only; a collector that is down costs nothing else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

from sidecar.config.models import TelemetryConfig
from sidecar.telemetry.conventions import GENAI, V1_41
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.otlp_metrics import build_otlp_metrics, wants_otlp_metrics
from sidecar.telemetry.prometheus import PrometheusSink
from sidecar.telemetry.registry import MetricRegistry
from tests.helpers.known_calls import known_calls
from tests.helpers.metrics import scrape, total
from tests.helpers.otlp import OtlpReceiver, key_values, start_receiver
from tests.helpers.ports import closed_port
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY
from tests.helpers.semconv import mode_environ
from tests.helpers.sidecar import SidecarFactory

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
# (OTel name, unit, kind) the receiver must get, per mode.
V1_41_METRICS = {
    ("gen_ai.client.operation.duration", "s", "histogram"),
    ("gen_ai.client.operation.time_to_first_chunk", "s", "histogram"),
    ("gen_ai.client.operation.time_per_output_chunk", "s", "histogram"),
    ("gen_ai.client.token.usage", "{token}", "histogram"),
}
LATEST_METRICS = {
    ("gen_ai.client.inference.duration", "s", "histogram"),
    ("gen_ai.client.embeddings.duration", "s", "histogram"),
    ("gen_ai.client.inference.time_to_first_chunk", "s", "histogram"),
    ("gen_ai.client.inference.time_per_output_chunk", "s", "histogram"),
    ("gen_ai.client.inference.usage.input_tokens", "{token}", "sum"),
    ("gen_ai.client.inference.usage.output_tokens", "{token}", "sum"),
    ("gen_ai.client.inference.usage.cache_read.input_tokens", "{token}", "sum"),
    ("gen_ai.client.inference.usage.cache_write.input_tokens", "{token}", "sum"),
    ("gen_ai.client.inference.usage.reasoning.output_tokens", "{token}", "sum"),
    ("gen_ai.client.inference.operation.input_tokens", "{token}", "histogram"),
    ("gen_ai.client.inference.operation.output_tokens", "{token}", "histogram"),
    ("gen_ai.client.embeddings.operation.input_tokens", "{token}", "histogram"),
}
SIDECAR_SAMPLE = {
    ("model_sidecar.requests", "{call}", "sum"),
    ("model_sidecar.cost", "USD", "sum"),
    ("model_sidecar.overhead", "s", "histogram"),
    ("model_sidecar.in_flight_requests", "{call}", "gauge"),
}


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(request: pytest.FixtureRequest) -> Iterator[OtlpReceiver]:
    running = start_receiver(request.param)
    yield running
    running.stop()


def metrics_of(request: Any) -> dict[str, Metric]:
    return {
        metric.name: metric
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }


def described(metrics: dict[str, Metric]) -> set[tuple[str, str, str]]:
    return {(name, metric.unit, metric.WhichOneof("data")) for name, metric in metrics.items()}


def points(metric: Metric) -> list[Any]:
    return list(getattr(metric, metric.WhichOneof("data")).data_points)


@pytest.mark.parametrize("mode", ["v1.41", "latest", "dup"])
async def test_a_real_receiver_gets_the_modes_metrics(
    mode: str,
    receiver: OtlpReceiver,
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
) -> None:
    environ = mode_environ(
        mode,
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_METRIC_EXPORT_INTERVAL="200",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=receiver.protocol,
        OTEL_SERVICE_NAME="checkout-llm",
    )
    sidecar = await sidecar_factory(environ=environ)
    app = openai.AsyncOpenAI(base_url=f"{sidecar.proxy_url}/v1", api_key=API_KEY, max_retries=0)
    stream = await app.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    async for _chunk in stream:
        pass
    await app.embeddings.create(model="text-embedding-3-small", input="hello")
    with pytest.raises(openai.InternalServerError):
        await app.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
            extra_headers={"x-sim-status": "500"},
        )  # fmt: skip
    await app.close()
    await records.wait_for(3)
    samples = await scrape(sidecar.admin_url)
    scraped_at = time.time_ns()

    # The first export that reflects all three calls and was made after the scrape.
    deadline = time.monotonic() + 10
    while True:
        requests = await receiver.wait_for_metrics(1)
        latest = requests[-1]
        metrics = metrics_of(latest)
        times = [p.time_unix_nano for m in metrics.values() for p in points(m)]
        if times and min(times) > scraped_at:
            break
        assert time.monotonic() < deadline, "no export after the scrape"
        await receiver.wait_for_metrics(len(requests) + 1)

    resource = key_values(latest.resource_metrics[0].resource.attributes)
    assert resource["service.name"] == "checkout-llm"
    assert latest.resource_metrics[0].scope_metrics[0].scope.name == "model_sidecar"
    expected = {"v1.41": V1_41_METRICS, "latest": LATEST_METRICS}.get(
        mode, V1_41_METRICS | LATEST_METRICS
    )
    genai = {item for item in described(metrics) if item[0].startswith("gen_ai.")}
    assert genai == expected
    assert described(metrics) >= SIDECAR_SAMPLE
    assert not any(name.startswith(("process", "python")) for name in metrics)

    for name, metric in metrics.items():
        kind = metric.WhichOneof("data")
        if kind == "sum":
            assert metric.sum.is_monotonic and metric.sum.aggregation_temporality == CUMULATIVE
        elif kind == "histogram":
            assert metric.histogram.aggregation_temporality == CUMULATIVE
            for point in metric.histogram.data_points:
                assert len(point.bucket_counts) == len(point.explicit_bounds) + 1
                assert sum(point.bucket_counts) == point.count, name
        for point in points(metric):
            assert point.start_time_unix_nano < point.time_unix_nano

    # The same values as /metrics, under the OTel names and attribute keys.
    duration = "gen_ai.client.inference.duration" if mode == "latest" else (
        "gen_ai.client.operation.duration"
    )  # fmt: skip
    prom = duration.replace(".", "_") + "_seconds"
    by_error = {
        key_values(p.attributes)["error.type"]: p for p in metrics[duration].histogram.data_points
        if key_values(p.attributes)["gen_ai.operation.name"] == "chat"
    }  # fmt: skip
    assert set(by_error) == {"", "500"}
    for error_type, point in by_error.items():
        labels = {"error_type": error_type, "gen_ai_operation_name": "chat"}
        assert point.count == total(samples, f"{prom}_count", **labels)
        assert point.sum == pytest.approx(total(samples, f"{prom}_sum", **labels))
    assert list(metrics[duration].histogram.data_points[0].explicit_bounds)[-1] == 600.0
    requests_metric = metrics["model_sidecar.requests"]
    attributes = key_values(requests_metric.sum.data_points[0].attributes)
    assert {"gen_ai.operation.name", "gen_ai.provider.name", "upstream", "outcome"} <= set(
        attributes
    )
    assert sum(p.as_double for p in requests_metric.sum.data_points) == 3
    if mode != "v1.41":
        usage = metrics["gen_ai.client.inference.usage.input_tokens"]
        modalities = {key_values(p.attributes)["gen_ai.token.modality"] for p in points(usage)}
        assert modalities == {"unknown"}
        assert sum(p.as_double for p in points(usage)) == total(
            samples, "gen_ai_client_inference_usage_input_tokens_total"
        )


def registry_with_known_calls() -> MetricRegistry:
    metrics = MetricRegistry(TelemetryConfig(), TelemetryDrops(), (V1_41, GENAI))
    sink = PrometheusSink(metrics)
    for record in known_calls():
        sink.call_started(record)
        sink.call_finished(record)
    return metrics


def test_cumulative_buckets_become_per_bucket_counts() -> None:
    metrics = registry_with_known_calls()
    exporter = build_otlp_metrics(
        metrics,
        {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert exporter is not None
    data = exporter.collect()
    [scope] = data.resource_metrics[0].scope_metrics
    found = {metric.name: metric for metric in scope.metrics}
    chunks = found["gen_ai.client.operation.time_per_output_chunk"]
    [point] = [p for p in chunks.data.data_points
               if p.attributes["gen_ai.request.model"] == "o4-mini"]  # fmt: skip
    # Gaps 0.5, 0.5 and 0.4 s: all three in the bucket from 0.32 to 0.64 s.
    assert point.count == 3 and point.sum == pytest.approx(1.4)
    assert list(point.explicit_bounds)[:8] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28]
    assert list(point.bucket_counts) == [0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]
    usage = found["gen_ai.client.inference.usage.cache_write.input_tokens"]
    assert sum(p.value for p in usage.data.data_points) == 50
    assert {p.attributes["gen_ai.token.modality"] for p in usage.data.data_points} == {"unknown"}


def test_opt_in_only() -> None:
    assert not wants_otlp_metrics({})
    assert not wants_otlp_metrics({"OTEL_METRICS_EXPORTER": "none"})
    assert wants_otlp_metrics({"OTEL_METRICS_EXPORTER": "prometheus, otlp"})
    assert not wants_otlp_metrics({"OTEL_METRICS_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"})
    metrics = registry_with_known_calls()
    # Asked for, but nowhere to send: off, with a warning (never a crash).
    assert build_otlp_metrics(metrics, {"OTEL_METRICS_EXPORTER": "otlp"}) is None


def test_a_collector_that_is_down_only_fails_the_export() -> None:
    metrics = registry_with_known_calls()
    exporter = build_otlp_metrics(
        metrics,
        {
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{closed_port()}/v1/metrics",
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "200",
            "OTEL_METRIC_EXPORT_TIMEOUT": "300",
        },
    )
    assert exporter is not None
    started = time.monotonic()
    assert exporter.export() is False
    exporter.close()
    assert exporter.failures == 2 and exporter.exports == 2
    assert time.monotonic() - started < 10
