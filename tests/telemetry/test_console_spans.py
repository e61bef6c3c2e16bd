"""`OTEL_TRACES_EXPORTER=console`: spans without a collector, one JSON line each on stdout with
the semconv attributes (logs stay on stderr); `otlp,console` does both, `none` neither."""

from __future__ import annotations

import json

import pytest

from sidecar.config.models import TelemetryConfig
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.tracing import build_tracing_sink
from tests.helpers.otlp import start_receiver
from tests.helpers.records import make_record
from tests.helpers.sdk import API_KEY, SDKClients
from tests.helpers.serve import serve_process
from tests.helpers.simulator import RunningSimulator

CHAT = [{"role": "user", "content": "hi"}]


@pytest.mark.slow
async def test_serve_prints_one_json_span_per_call_on_stdout(
    simulator: RunningSimulator, sdk: SDKClients
) -> None:
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "laptop"}
    async with serve_process(simulator.url, env=env, capture_stdout=True) as served:
        client = sdk.openai(served.proxy)
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=CHAT, stream=True
        )
        async for _ in stream:
            pass
        status, log = await served.stop()  # shutdown flushes the queued spans
        assert served.process.stdout is not None
        out = (await served.process.stdout.read()).decode()
    assert status == 0
    spans = [json.loads(line) for line in out.splitlines()]  # every stdout line is a span
    assert [span["name"] for span in spans] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    for span in spans:
        attributes = span["attributes"]
        assert span["kind"] == "CLIENT" and span["status"]["code"] == "UNSET"
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert attributes["gen_ai.usage.output_tokens"] > 0
        assert len(span["trace_id"]) == 32 and len(span["span_id"]) == 16
        assert span["resource"]["service.name"] == "laptop"
        assert span["duration_ms"] > 0
    assert API_KEY not in out
    assert '"logger"' not in out and '"listening"' in log, "logs on stderr, spans on stdout"


async def test_console_and_otlp_together_and_none(capsys: pytest.CaptureFixture[str]) -> None:
    receiver = start_receiver("http/protobuf")
    try:
        both = receiver.environ(OTEL_TRACES_EXPORTER="otlp,console")
        sink = build_tracing_sink(TelemetryConfig(), both, TelemetryDrops())
        assert sink is not None
        sink.call_finished(make_record())
        [received] = await receiver.wait_for_spans(1)
        sink.close()
        (line,) = capsys.readouterr().out.splitlines()
        printed = json.loads(line)
        assert printed["name"] == received.name
        assert int(printed["span_id"], 16) == received.span_id
        # `none` turns tracing off even with an endpoint; `console` alone needs no endpoint.
        off = receiver.environ(OTEL_TRACES_EXPORTER="none")
        assert build_tracing_sink(TelemetryConfig(), off, TelemetryDrops()) is None
        console = {"OTEL_TRACES_EXPORTER": "console"}
        assert build_tracing_sink(TelemetryConfig(), console, TelemetryDrops()) is not None
    finally:
        receiver.stop()
