"""The call's span carries cost, confidence and each sidecar retry as an event (real OTLP)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.helpers.otlp import OtlpReceiver, key_values, start_receiver
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = start_receiver("http/protobuf")
    yield running
    running.stop()


async def test_span_has_cost_confidence_and_retry_events(
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
    simulator: RunningSimulator,
    sdk: SDKClients,
    receiver: OtlpReceiver,
) -> None:
    retries = {"enabled": True, "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.02}
    sidecar = await sidecar_factory({"retries": retries}, environ=receiver.environ())
    simulator.sim.fail_next(1, 503)
    completion = await sdk.openai(sidecar.proxy_url).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], logprobs=True
    )
    logprobs = [entry.logprob for entry in completion.choices[0].logprobs.content]
    (record,) = await records.wait_for(1)
    [span] = await receiver.wait_for_spans(1)
    assert span.attributes["model_sidecar.cost_usd"] == record.cost_usd > 0
    assert span.attributes["model_sidecar.confidence"] == math.exp(sum(logprobs) / len(logprobs))
    assert span.attributes["model_sidecar.confidence_min"] == math.exp(min(logprobs))
    assert span.attributes["model_sidecar.sidecar_retries"] == 1

    with receiver.received.lock:
        bodies = list(receiver.received.bodies)
    events = [
        event
        for body in bodies
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope in resource.scope_spans
        for exported in scope.spans
        for event in exported.events
    ]
    [event] = events
    assert event.name == "model_sidecar.retry"
    attributes = key_values(event.attributes)
    assert attributes["model_sidecar.retry.attempt"] == 2
    assert attributes["model_sidecar.retry.reason"] == "503"
    assert span.start_unix_ns < event.time_unix_nano < span.end_unix_ns
