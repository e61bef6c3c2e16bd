"""A call through the sidecar gets exactly what a direct call gets, and is measured exactly."""

from __future__ import annotations

import time

import aiohttp

from sidecar.app import Sidecar
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY, SDKClients
from tests.helpers.simulator import RunningSimulator

MESSAGES = [{"role": "user", "content": "Say hello to the sidecar in five words."}]


def assert_timings_in_order(record: object) -> None:
    received = record.received  # type: ignore[attr-defined]
    headers = record.upstream_headers  # type: ignore[attr-defined]
    end = record.end  # type: ignore[attr-defined]
    assert received <= headers <= end
    first = record.first_chunk  # type: ignore[attr-defined]
    if first is not None:
        assert headers <= first <= end
        chunks = record.chunk_times  # type: ignore[attr-defined]
        assert chunks == sorted(chunks) and chunks[0] == first


async def test_openai_chat_non_streaming_is_byte_identical(
    sdk: SDKClients, simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink
) -> None:
    direct = await sdk.openai(simulator.url).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=50
    )
    direct_request = simulator.sim.received[-1]
    proxied = await sdk.openai(sidecar.proxy_url).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=50
    )
    proxied_request = simulator.sim.received[-1]

    assert proxied.http_response.content == direct.http_response.content
    assert proxied.http_response.status_code == direct.http_response.status_code
    assert proxied_request.body == direct_request.body
    assert proxied_request.headers["authorization"] == f"Bearer {API_KEY}"

    body = direct.parse()
    (record,) = await records.wait_for(1)
    assert record.protocol == "openai" and record.provider_name == "openai"
    assert record.request.operation == "chat"
    assert record.request.request_model == "gpt-4o-mini"
    assert record.request.temperature == 0.2 and record.request.max_tokens == 50
    assert record.request.stream is False
    assert record.http_status == 200 and record.outcome == "ok"
    assert record.response_model == body.model
    assert record.response_id == body.id
    assert body.usage is not None
    assert record.input_tokens == body.usage.prompt_tokens
    assert record.output_tokens == body.usage.completion_tokens
    assert record.finish_reasons == [choice.finish_reason for choice in body.choices]
    assert record.first_chunk is None
    assert_timings_in_order(record)


async def test_openai_stream_without_usage_is_byte_identical_with_usage_recorded(
    sdk: SDKClients, simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink
) -> None:
    async def stream_bytes(base: str) -> bytes:
        client = sdk.openai(base)
        async with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ) as response:
            return b"".join([chunk async for chunk in response.iter_bytes()])

    direct = await stream_bytes(simulator.url)
    assert b'"usage"' not in direct
    proxied = await stream_bytes(sidecar.proxy_url)
    assert proxied == direct
    # The sidecar asked upstream for usage, and stripped it from what the app got.
    assert b'"include_usage":true' in simulator.sim.received[-1].body

    (record,) = await records.wait_for(1)
    assert record.stream_usage_injected
    assert record.request.stream is True
    assert record.input_tokens is not None and record.input_tokens > 0
    assert record.output_tokens is not None and record.output_tokens > 0
    assert record.first_chunk is not None and len(record.chunk_times) >= 2
    assert record.finish_reasons == ["stop"]
    assert record.outcome == "ok"
    assert_timings_in_order(record)


async def test_openai_stream_with_usage_passes_usage_through(
    sdk: SDKClients, simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink
) -> None:
    direct = sdk.openai(simulator.url)
    proxied = sdk.openai(sidecar.proxy_url)
    kwargs = dict(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    direct_chunks = [c.model_dump() async for c in await direct.chat.completions.create(**kwargs)]  # type: ignore[call-overload]
    proxied_chunks = [c.model_dump() async for c in await proxied.chat.completions.create(**kwargs)]  # type: ignore[call-overload]
    assert proxied_chunks == direct_chunks
    usage = direct_chunks[-1]["usage"]
    (record,) = await records.wait_for(1)
    assert not record.stream_usage_injected
    assert record.input_tokens == usage["prompt_tokens"]
    assert record.output_tokens == usage["completion_tokens"]


async def test_anthropic_messages_stream_and_not(
    sdk: SDKClients, simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink
) -> None:
    kwargs = dict(model="claude-sonnet-4-20250514", max_tokens=64, messages=MESSAGES)
    direct = await sdk.anthropic(simulator.url).messages.with_raw_response.create(**kwargs)  # type: ignore[call-overload]
    proxied = await sdk.anthropic(sidecar.proxy_url).messages.with_raw_response.create(**kwargs)  # type: ignore[call-overload]
    assert proxied.http_response.content == direct.http_response.content
    message = await direct.parse()

    async def stream_events(base: str) -> list[dict[str, object]]:
        client = sdk.anthropic(base)
        async with client.messages.stream(**kwargs) as stream:  # type: ignore[arg-type]
            return [event.model_dump() async for event in stream]

    direct_events = await stream_events(simulator.url)
    proxied_events = await stream_events(sidecar.proxy_url)
    assert proxied_events == direct_events

    plain, streamed = await records.wait_for(2)
    usage = message.usage
    expected_input = (
        usage.input_tokens
        + (usage.cache_read_input_tokens or 0)
        + (usage.cache_creation_input_tokens or 0)
    )
    for record in (plain, streamed):
        assert record.protocol == "anthropic" and record.request.operation == "chat"
        assert record.input_tokens == expected_input
        assert record.output_tokens == usage.output_tokens
        assert record.cache_read_tokens == (usage.cache_read_input_tokens or 0) or (
            record.cache_read_tokens is None and not usage.cache_read_input_tokens
        )
        assert record.response_model == message.model
        assert record.finish_reasons == [message.stop_reason]
        assert_timings_in_order(record)
    assert plain.first_chunk is None
    assert streamed.first_chunk is not None and streamed.request.stream


async def test_gemini_generate_and_stream_over_raw_http(
    simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink
) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "Hello there, Gemini."}]}]}
    headers = {"x-goog-api-key": API_KEY}
    paths = (
        "/v1beta/models/gemini-2.0-flash:generateContent",
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
    )
    async with aiohttp.ClientSession() as http:
        for path in paths:
            async with http.post(simulator.url + path, json=body, headers=headers) as response:
                direct = await response.read()
                direct_status = response.status
            async with http.post(sidecar.proxy_url + path, json=body, headers=headers) as response:
                proxied = await response.read()
                assert response.status == direct_status == 200
            assert proxied == direct

    plain, streamed = await records.wait_for(2)
    for record in (plain, streamed):
        assert record.provider_name == "gcp.gemini"
        assert record.request.operation == "generate_content"
        assert record.request.request_model == "gemini-2.0-flash"
        assert record.input_tokens and record.output_tokens
        assert record.outcome == "ok"
    assert streamed.request.stream and streamed.first_chunk is not None
    assert plain.first_chunk is None


async def test_first_chunk_arrives_long_before_the_last(
    sdk: SDKClients, simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink
) -> None:
    client = sdk.openai(sidecar.proxy_url)
    started = time.perf_counter()
    arrivals: list[float] = []
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={
            "x-sim-chunks": "10",
            "x-sim-chunk-interval-ms": "100",
            "x-sim-ttft-ms": "0",
        },
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter() - started)
    assert len(arrivals) == 10
    # The first content chunk reaches the app while the upstream is still producing the rest.
    assert arrivals[0] < 0.5
    assert arrivals[-1] - arrivals[0] > 0.8
    (record,) = await records.wait_for(1)
    assert len(record.chunk_times) == 10
    gaps = [b - a for a, b in zip(record.chunk_times, record.chunk_times[1:], strict=False)]
    assert min(gaps) > 0.05


async def test_request_body_bytes_reach_upstream_unchanged(
    simulator: RunningSimulator, sidecar: Sidecar
) -> None:
    raw = b'{ "model" : "gpt-4o-mini",\n  "messages": [{"role":"user","content":"caf\\u00e9"}] }'
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            sidecar.proxy_url + "/v1/chat/completions",
            data=raw,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
        ) as response,
    ):
        assert response.status == 200
    assert simulator.sim.received[-1].body == raw


async def test_gzip_response_is_forwarded_compressed_and_usage_read(
    simulator: RunningSimulator, sidecar: Sidecar, records: RecordingSink
) -> None:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.post(
            sidecar.proxy_url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": MESSAGES},
            headers={"Accept-Encoding": "gzip", "x-sim-gzip": "1"},
        ) as response,
    ):
        assert response.headers.get("Content-Encoding") == "gzip"
        compressed = await response.read()
    import gzip
    import json

    usage = json.loads(gzip.decompress(compressed))["usage"]
    (record,) = await records.wait_for(1)
    assert record.input_tokens == usage["prompt_tokens"]
    assert record.output_tokens == usage["completion_tokens"]
