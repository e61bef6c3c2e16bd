"""Spans end to end: a real openai SDK call through a real sidecar to a real OTLP receiver."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import replace

import openai
import pytest

from sidecar.forward.tracecontext import format_traceparent, parse_traceparent
from sidecar.simulate.profiles import FALLBACK_PROFILE, without_delays
from tests.helpers.otlp import SPAN_KIND_CLIENT, OtlpReceiver, start_receiver
from tests.helpers.ports import closed_port
from tests.helpers.sdk import API_KEY
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

APP_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PROMPT = "Name one prime number. (prompt text)"


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(request: pytest.FixtureRequest) -> Iterator[OtlpReceiver]:
    running = start_receiver(request.param)
    yield running
    running.stop()


def client(proxy_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{proxy_url}/v1", api_key=API_KEY, max_retries=0)


def upstream_traceparents(simulator: RunningSimulator) -> dict[int, int]:
    """{parent span id: trace id} from the traceparent of every request the provider received."""
    found = {}
    for request in simulator.sim.received:
        parsed = parse_traceparent(request.headers.get("traceparent"))
        if parsed is not None:
            trace_id, parent_id, _ = parsed
            found[parent_id] = trace_id
    return found


async def test_each_call_is_one_child_span_of_the_apps_span(
    receiver: OtlpReceiver, sidecar_factory: SidecarFactory, simulator: RunningSimulator
) -> None:
    environ = receiver.environ(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    sidecar = await sidecar_factory(environ=environ)
    app = client(sidecar.proxy_url)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": PROMPT}
    ]

    plain_parent, stream_parent = 0x1111111111111111, 0x2222222222222222
    reply = await app.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        temperature=0.5,
        extra_headers={"traceparent": format_traceparent(APP_TRACE_ID, plain_parent, True)},
    )
    stream = await app.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
        extra_headers={"traceparent": format_traceparent(APP_TRACE_ID, stream_parent, True)},
    )
    streamed = "".join(
        [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    )
    await app.chat.completions.create(model="gpt-4o-mini", messages=messages)  # no traceparent

    await app.close()

    spans = await receiver.wait_for_spans(3)
    assert len(spans) == 3
    by_parent = {span.parent_span_id: span for span in spans}
    plain, streaming, root = by_parent[plain_parent], by_parent[stream_parent], by_parent[None]

    # The span each call made upstream is exactly the one the collector got.
    sent_upstream = upstream_traceparents(simulator)
    for span in spans:
        assert sent_upstream[span.span_id] == span.trace_id
        assert span.name == "chat gpt-4o-mini"
        assert span.kind == SPAN_KIND_CLIENT
        assert span.end_unix_ns > span.start_unix_ns
    assert plain.trace_id == streaming.trace_id == APP_TRACE_ID
    assert root.trace_id != APP_TRACE_ID
    assert len({span.span_id for span in spans}) == 3

    assert reply.usage is not None
    assert plain.attributes["gen_ai.provider.name"] == "openai"
    assert plain.attributes["gen_ai.request.temperature"] == 0.5
    assert plain.attributes["gen_ai.response.id"] == reply.id
    assert plain.attributes["gen_ai.response.model"] == reply.model
    assert plain.attributes["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert plain.attributes["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert plain.attributes["server.address"] == "127.0.0.1"
    assert plain.attributes["server.port"] == int(simulator.url.rsplit(":", 1)[1])
    assert "gen_ai.response.time_to_first_chunk" not in plain.attributes
    ttfc = streaming.attributes["gen_ai.response.time_to_first_chunk"]
    assert 0 < ttfc < (streaming.end_unix_ns - streaming.start_unix_ns) / 1e9

    # Content was opted in: the prompt and the answer are there; the API key never is.
    assert PROMPT in plain.attributes["gen_ai.input.messages"]
    assert reply.choices[0].message.content
    assert reply.choices[0].message.content in plain.attributes["gen_ai.output.messages"]
    assert streamed and streamed in streaming.attributes["gen_ai.output.messages"]
    assert API_KEY.encode() not in receiver.raw_bytes
    assert all(API_KEY not in str(headers) for headers in receiver.received.headers)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.slow
async def test_a_collector_that_is_down_costs_calls_nothing(
    protocol: str, sidecar_factory: SidecarFactory, simulator: RunningSimulator
) -> None:
    simulator.sim.profiles["instant"] = without_delays(replace(FALLBACK_PROFILE, name="instant"))
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
        "OTEL_BSP_SCHEDULE_DELAY": "20",
    }
    traced = await sidecar_factory(environ=environ)
    untraced = await sidecar_factory()
    assert traced.tracing is not None and untraced.tracing is None
    clients = {"on": client(traced.proxy_url), "off": client(untraced.proxy_url)}
    latencies: dict[str, list[float]] = {"on": [], "off": []}

    for call in range(220):
        for arm, app in clients.items():  # interleaved, so drift hits both arms alike
            began = time.perf_counter()
            reply = await app.chat.completions.create(
                model="instant", messages=[{"role": "user", "content": f"call {call}"}]
            )
            elapsed = time.perf_counter() - began
            assert reply.choices[0].message.content
            if call >= 20:  # warm-up
                latencies[arm].append(elapsed)

    on, off = statistics.median(latencies["on"]), statistics.median(latencies["off"])
    assert on < 1.5 * off + 0.002, (
        f"median with a dead collector {on * 1e3:.2f} ms vs {off * 1e3:.2f} ms"
    )

    for app in clients.values():
        await app.close()

    # What Sidecar.stop() does for this sink, measured: bounded, and every span the dead
    # collector never got was counted as dropped.
    began = time.perf_counter()
    traced.tracing.close()
    assert time.perf_counter() - began < traced.tracing.close_timeout + 1.0
    assert traced.drops.snapshot()["tracing"] == 220
