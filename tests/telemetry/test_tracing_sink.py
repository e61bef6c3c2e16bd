"""The tracing sink against real OTLP receivers (gRPC and HTTP/protobuf): one span per call."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from sidecar.config.models import TelemetryConfig
from sidecar.record import CONNECTION_ERROR, UPSTREAM_ERROR
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.otlp_settings import ExporterSettings, sampler_from_environ
from sidecar.telemetry.tracing import TracingSink, build_tracing_sink
from tests.helpers.otlp import (
    SPAN_KIND_CLIENT,
    STATUS_CODE_ERROR,
    STATUS_CODE_UNSET,
    OtlpReceiver,
    start_receiver,
)
from tests.helpers.ports import closed_port
from tests.helpers.records import (
    ANSWER,
    APP_SPAN_ID,
    APP_TRACE_ID,
    CALL_SPAN_ID,
    PROMPT,
    START_NS,
    make_record,
)


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(request: pytest.FixtureRequest) -> Iterator[OtlpReceiver]:
    running = start_receiver(request.param)
    yield running
    running.stop()


def make_sink(
    environ: dict[str, str], drops: TelemetryDrops | None = None, max_chars: int = 16384
) -> TracingSink:
    telemetry = TelemetryConfig(capture_content_max_chars=max_chars)
    sink = build_tracing_sink(telemetry, environ, drops or TelemetryDrops())
    assert sink is not None
    return sink


async def test_one_client_span_with_the_semconv_attributes(receiver: OtlpReceiver) -> None:
    environ = receiver.environ(
        OTEL_SERVICE_NAME="checkout",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,team=pay%20ments",
    )
    sink = make_sink(environ)
    assert sink.capture_content is False
    sink.call_started(make_record())
    sink.call_finished(make_record())
    [span] = await receiver.wait_for_spans(1)
    sink.close()

    assert span.name == "chat gpt-4o-mini"
    assert span.kind == SPAN_KIND_CLIENT
    assert span.trace_id == APP_TRACE_ID
    assert span.span_id == CALL_SPAN_ID
    assert span.parent_span_id == APP_SPAN_ID
    assert span.start_unix_ns == START_NS
    assert span.end_unix_ns == START_NS + 1_500_000_000
    assert span.status_code == STATUS_CODE_UNSET
    assert span.scope == "model_sidecar"
    assert span.resource["service.name"] == "checkout"
    assert span.resource["deployment.environment"] == "test"
    assert span.resource["team"] == "pay ments"
    ttfc = span.attributes.pop("gen_ai.response.time_to_first_chunk")
    overhead = span.attributes.pop("model_sidecar.overhead_seconds")
    assert ttfc == pytest.approx(0.25)
    assert overhead == pytest.approx(0.05)
    assert span.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 256,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.seed": 7,
        "gen_ai.request.choice.count": 2,
        "gen_ai.request.stream": True,
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-123",
        "gen_ai.response.finish_reasons": ["stop", "length"],
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 40,
        "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.usage.cache_creation.input_tokens": 3,
        "gen_ai.usage.reasoning.output_tokens": 16,
        "server.address": "api.openai.com",
        "server.port": 443,
        "http.response.status_code": 200,
        "model_sidecar.upstream": "openai",
        "model_sidecar.outcome": "ok",
        "model_sidecar.cost_usd": 0.00042,
        "model_sidecar.confidence": 0.93,
        "model_sidecar.client_retry_count": 1,
        "model_sidecar.sidecar_retries": 0,
        "model_sidecar.experiment": "exp-a",
        "model_sidecar.variant": "candidate",
    }
    # Content capture is off by default: no prompt or answer anywhere in the export.
    assert PROMPT.encode() not in receiver.raw_bytes
    assert ANSWER.encode() not in receiver.raw_bytes


async def test_failed_calls_have_status_error_and_error_type(receiver: OtlpReceiver) -> None:
    sink = make_sink(receiver.environ())
    sink.call_finished(make_record(outcome=UPSTREAM_ERROR, http_status=503, span_id=1))
    sink.call_finished(
        make_record(outcome=CONNECTION_ERROR, http_status=None, span_id=2, response_model=None)
    )
    sink.call_finished(make_record(span_id=3))
    spans = {span.span_id: span for span in await receiver.wait_for_spans(3)}
    sink.close()

    assert spans[1].status_code == STATUS_CODE_ERROR
    assert spans[1].attributes["error.type"] == "503"
    assert spans[1].attributes["http.response.status_code"] == 503
    assert spans[1].attributes["model_sidecar.outcome"] == "upstream_error"
    assert spans[2].status_code == STATUS_CODE_ERROR
    assert spans[2].attributes["error.type"] == "connection_error"
    assert "http.response.status_code" not in spans[2].attributes
    assert "gen_ai.response.model" not in spans[2].attributes
    assert spans[3].status_code == STATUS_CODE_UNSET
    assert "error.type" not in spans[3].attributes


async def test_root_spans_and_spans_without_recorded_ids(receiver: OtlpReceiver) -> None:
    sink = make_sink(receiver.environ())
    # The proxy chose the ids (no traceparent from the app): a root span with exactly those ids.
    sink.call_finished(make_record(parent_span_id=None, trace_id=0xABC, span_id=0xDEF))
    # Tracing context never filled in: the SDK makes ids up.
    bare = make_record(trace_id=None, span_id=None, parent_span_id=None)
    bare.request.request_model = None
    sink.call_finished(bare)
    spans = await receiver.wait_for_spans(2)
    sink.close()

    by_name = {span.name: span for span in spans}
    root = by_name["chat gpt-4o-mini"]
    assert (root.trace_id, root.span_id, root.parent_span_id) == (0xABC, 0xDEF, None)
    generated = by_name["chat"]  # no model: the name is just the operation
    assert generated.trace_id not in (0, 0xABC, APP_TRACE_ID)
    assert generated.span_id not in (0, 0xDEF)
    assert generated.parent_span_id is None


async def test_sampling_follows_the_parent_and_otel_traces_sampler(receiver: OtlpReceiver) -> None:
    sink = make_sink(receiver.environ())
    sink.call_finished(make_record(trace_sampled=False, span_id=1))
    sink.call_finished(make_record(span_id=2))
    sink.close()  # flushes everything that was queued
    assert [span.span_id for span in receiver.spans] == [2]

    always_on = make_sink(receiver.environ(OTEL_TRACES_SAMPLER="always_on"))
    always_on.call_finished(make_record(trace_sampled=False, span_id=3))
    always_on.close()
    assert [span.span_id for span in receiver.spans] == [2, 3]

    always_off = make_sink(receiver.environ(OTEL_TRACES_SAMPLER="parentbased_always_off"))
    always_off.call_finished(make_record(parent_span_id=None, span_id=4))
    always_off.close()
    assert [span.span_id for span in receiver.spans] == [2, 3]


def test_sampler_names_and_argument() -> None:
    ratio = sampler_from_environ(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    assert ratio.get_description().startswith("ParentBased{root:TraceIdRatioBased{0.25}")
    assert sampler_from_environ({}).get_description().startswith("ParentBased{root:AlwaysOnSampler")
    assert sampler_from_environ({"OTEL_TRACES_SAMPLER": "always_off"}).get_description() == (
        "AlwaysOffSampler"
    )


async def test_exporter_headers_and_signal_endpoint_reach_the_collector(
    receiver: OtlpReceiver,
) -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint
        + ("/v1/traces" if receiver.protocol == "http/protobuf" else ""),
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": receiver.protocol,
        "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-token=tok%20en,x-tenant=blue",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    sink = make_sink(environ)
    sink.call_finished(make_record())
    await receiver.wait_for_spans(1)
    sink.close()
    headers = receiver.received.headers[0]
    assert headers["x-collector-token"] == "tok en"
    assert headers["x-tenant"] == "blue"


def test_exporter_settings_follow_the_otlp_spec() -> None:
    http = ExporterSettings.from_environ(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "750",
        }
    )
    assert http is not None
    assert (http.protocol, http.endpoint, http.timeout) == (
        "http/protobuf",
        "http://collector:4318/v1/traces",
        0.75,
    )
    grpc = ExporterSettings.from_environ(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2000",
        }
    )
    assert grpc is not None
    assert (grpc.endpoint, grpc.insecure, grpc.timeout) == ("https://collector:4317", False, 2.0)
    signal = ExporterSettings.from_environ(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/custom/traces",
        }
    )
    assert signal is not None
    assert signal.endpoint == "http://collector:4318/custom/traces"
    assert ExporterSettings.from_environ({"OTEL_SERVICE_NAME": "x"}) is None


def test_tracing_is_off_without_an_endpoint_or_when_the_sdk_is_disabled() -> None:
    telemetry = TelemetryConfig()
    drops = TelemetryDrops()
    assert build_tracing_sink(telemetry, {}, drops) is None
    assert build_tracing_sink(telemetry, {"OTEL_SERVICE_NAME": "x"}, drops) is None
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "TRUE"}
    assert build_tracing_sink(telemetry, disabled, drops) is None


async def test_content_capture_when_opted_in(receiver: OtlpReceiver) -> None:
    environ = receiver.environ(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    sink = make_sink(environ)
    assert sink.capture_content is True
    chat = make_record(span_id=1)
    chat.request_body["messages"] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": PROMPT}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    anthropic = make_record(span_id=2, protocol="anthropic", provider_name="anthropic")
    anthropic.request_body = {
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": PROMPT},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "tu_1", "name": "calc", "input": {"x": 1}}],
            },
        ],
    }
    gemini = make_record(span_id=3, protocol="gemini", provider_name="gcp.gemini")
    gemini.request_body = {
        "systemInstruction": {"parts": [{"text": "Answer in French."}]},
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
    }
    for record in (chat, anthropic, gemini):
        sink.call_finished(record)
    spans = {span.span_id: span.attributes for span in await receiver.wait_for_spans(3)}
    sink.close()

    assert json.loads(spans[1]["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": '{"q": "x"}'}
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_1", "response": "42"}],
        },
    ]
    expected_output = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": ANSWER}],
            "finish_reason": "stop",
        }
    ]
    assert json.loads(spans[1]["gen_ai.output.messages"]) == expected_output
    assert "gen_ai.system_instructions" not in spans[1]

    assert json.loads(spans[2]["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "tu_1", "name": "calc", "arguments": {"x": 1}}],
        },
    ]
    assert json.loads(spans[2]["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "You are terse."}
    ]
    assert json.loads(spans[3]["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    ]
    assert json.loads(spans[3]["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Answer in French."}
    ]


async def test_captured_content_is_truncated_to_the_configured_size(
    receiver: OtlpReceiver,
) -> None:
    environ = receiver.environ(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    sink = make_sink(environ, max_chars=30)
    record = make_record(output_text="x" * 1000)
    record.request_body["messages"] = [
        {"role": "user", "content": "a" * 20},
        {"role": "user", "content": "b" * 20},
        {"role": "user", "content": "c" * 20},
    ]
    sink.call_finished(record)
    [span] = await receiver.wait_for_spans(1)
    sink.close()

    messages = json.loads(span.attributes["gen_ai.input.messages"])
    # 30 characters of budget: role "user" (4) + 20 a's, then role (4) + 2 b's; c's never fit.
    assert messages == [
        {"role": "user", "parts": [{"type": "text", "content": "a" * 20}]},
        {"role": "user", "parts": [{"type": "text", "content": "bb"}]},
    ]
    output = json.loads(span.attributes["gen_ai.output.messages"])
    assert output[0]["parts"][0]["content"] == "x" * 30


async def test_a_stalled_collector_costs_counted_spans_never_time(receiver: OtlpReceiver) -> None:
    drops = TelemetryDrops()
    environ = receiver.environ(
        OTEL_BSP_MAX_QUEUE_SIZE="4",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="1",
        OTEL_BSP_SCHEDULE_DELAY="10",
        OTEL_EXPORTER_OTLP_TIMEOUT="20000",
    )
    sink = make_sink(environ, drops)
    receiver.flowing.clear()  # the collector accepts connections but never answers
    slowest = 0.0
    for span_id in range(1, 51):
        began = time.perf_counter()
        sink.call_finished(make_record(span_id=span_id))
        slowest = max(slowest, time.perf_counter() - began)
    dropped = drops.snapshot()["tracing"]
    # At most the queue (4) plus the batch stuck in the export (1) were kept.
    assert 50 - 5 <= dropped <= 50 - 4
    assert slowest < 0.25  # a blocked call would wait for the 20 s export timeout

    receiver.flowing.set()
    sink.close()
    # Every span either reached the collector or was counted as dropped.
    assert len(receiver.spans) + drops.snapshot()["tracing"] == 50


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_collector_that_is_down_never_blocks_and_lost_spans_are_counted(protocol: str) -> None:
    drops = TelemetryDrops()
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
        "OTEL_BSP_SCHEDULE_DELAY": "10",
    }
    sink = make_sink(environ, drops)
    began = time.perf_counter()
    for span_id in range(1, 201):
        sink.call_finished(make_record(span_id=span_id))
    assert time.perf_counter() - began < 1.0  # ~50 µs each; generous for a shared machine

    began = time.perf_counter()
    sink.close()
    assert time.perf_counter() - began < sink.close_timeout + 1.0
    assert drops.snapshot()["tracing"] == 200
    sink.call_finished(make_record())  # after close: ignored, no error
