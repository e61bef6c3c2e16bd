"""Confidence: exp(mean logprob) exactly, in streams too; JSON-field and header sources;
headers on whole bodies only; request_logprobs leaves the app's response byte-identical."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from sidecar.record import CallRecord
from tests.helpers.metrics import scrape, series, total
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

CONFIDENCE = "model_sidecar_confidence"
LOW = "model_sidecar_low_confidence_total"
CONFIDENCE_HEADER = "x-model-sidecar-confidence"
LOW_HEADER = "x-model-sidecar-low-confidence"
CHAT = "/v1/chat/completions"


def geometric_mean(logprobs: list[float]) -> float:
    """What the sidecar must report: exp of the mean token logprob."""
    return math.exp(sum(logprobs) / len(logprobs))


async def test_chat_logprobs_give_exp_mean_with_headers_not_in_the_body(
    sidecar_factory: SidecarFactory, records: RecordingSink, sdk: SDKClients
) -> None:
    sidecar = await sidecar_factory({"confidence": {"threshold": 0.99}})
    client = sdk.openai(sidecar.proxy_url)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "how sure?"}], logprobs=True
    )
    completion = raw.parse()
    logprobs = [entry.logprob for entry in completion.choices[0].logprobs.content]
    expected = geometric_mean(logprobs)
    assert 0 < expected < 0.99
    assert float(raw.headers[CONFIDENCE_HEADER]) == expected
    assert raw.headers[LOW_HEADER] == "true"
    assert b"x-model-sidecar" not in raw.http_response.content
    (record,) = await records.wait_for(1)
    assert record.confidence == expected
    assert record.confidence_min == math.exp(min(logprobs))

    samples = await scrape(sidecar.admin_url)
    assert total(samples, CONFIDENCE + "_count") == 1
    assert total(samples, CONFIDENCE + "_sum") == expected
    assert total(samples, LOW, gen_ai_request_model="gpt-4o-mini") == 1


async def test_streaming_logprobs_give_exp_mean_and_no_headers(
    sidecar_factory: SidecarFactory, records: RecordingSink, sdk: SDKClients
) -> None:
    sidecar = await sidecar_factory({"confidence": {"threshold": 0.6}})
    client = sdk.openai(sidecar.proxy_url)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4.1-nano",  # unsure of its tokens
        messages=[{"role": "user", "content": "stream it"}],
        logprobs=True,
        stream=True,
        extra_headers={"x-sim-status": "200"},  # not one of its random 429s
    )
    assert CONFIDENCE_HEADER not in raw.headers
    logprobs: list[float] = []
    async for chunk in raw.parse():
        for choice in chunk.choices:
            if choice.logprobs is not None and choice.logprobs.content:
                logprobs.extend(entry.logprob for entry in choice.logprobs.content)
    assert len(logprobs) > 5
    expected = geometric_mean(logprobs)
    (record,) = await records.wait_for(1)
    assert record.confidence == expected and record.low_confidence
    samples = await scrape(sidecar.admin_url)
    assert total(samples, CONFIDENCE + "_sum") == expected
    assert total(samples, LOW) == 1


async def test_gemini_logprobs_result_gives_exp_mean(
    sidecar_factory: SidecarFactory, records: RecordingSink
) -> None:
    sidecar = await sidecar_factory()
    body = {
        "contents": [{"role": "user", "parts": [{"text": "sure?"}]}],
        "generationConfig": {"responseLogprobs": True, "logprobs": 2},
    }
    url = sidecar.proxy_url + "/v1beta/models/gemini-2.0-flash:generateContent"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        answer = await response.json()
        header = float(response.headers[CONFIDENCE_HEADER])
    chosen = answer["candidates"][0]["logprobsResult"]["chosenCandidates"]
    expected = geometric_mean([entry["logProbability"] for entry in chosen])
    assert header == expected
    (record,) = await records.wait_for(1)
    assert record.confidence == expected


async def test_no_logprobs_no_confidence(
    sidecar_factory: SidecarFactory, records: RecordingSink, sdk: SDKClients
) -> None:
    sidecar = await sidecar_factory()
    raw = await sdk.openai(sidecar.proxy_url).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert CONFIDENCE_HEADER not in raw.headers
    await records.wait_for(1)
    assert series(await scrape(sidecar.admin_url), CONFIDENCE + "_count") == []


class FixedAnswer:
    """A simulated provider whose model answers with fixed content and headers."""

    def __init__(self, content: str, headers: dict[str, str] | None = None) -> None:
        self.content = content
        self.headers = headers or {}

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        body = {
            "id": "chatcmpl-fixed",
            "object": "chat.completion",
            "created": 1,
            "model": payload["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.content},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
        }
        return web.json_response(body, headers=self.headers)


@pytest.fixture
async def fixed_upstream() -> AsyncIterator[tuple[str, FixedAnswer]]:
    """A fixed-answer provider on a loopback port."""
    answer = FixedAnswer(
        '```json\n{"intent": "refund", "confidence": 0.62}\n```', {"x-conf": "0.3"}
    )
    app = web.Application()
    app.router.add_post(CHAT, answer.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", answer
    await runner.cleanup()


def pointed_at(url: str, confidence: dict[str, Any]) -> dict[str, Any]:
    return {"upstreams": {"openai": {"url": url}}, "confidence": confidence}


@pytest.mark.parametrize(
    ("confidence", "expected", "low"),
    [
        ({"source": "json_field", "json_field": "confidence", "threshold": 0.7}, 0.62, True),
        ({"source": "json_field", "json_field": "confidence", "threshold": 0.5}, 0.62, False),
        ({"source": "header", "header": "X-Conf"}, 0.3, True),
    ],
)
async def test_json_field_and_header_sources(
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
    sdk: SDKClients,
    fixed_upstream: tuple[str, FixedAnswer],
    confidence: dict[str, Any],
    expected: float,
    low: bool,
) -> None:
    url, answer = fixed_upstream
    sidecar = await sidecar_factory(pointed_at(url, confidence))
    raw = await sdk.openai(sidecar.proxy_url).chat.completions.with_raw_response.create(
        model="intent-classifier", messages=[{"role": "user", "content": "my order broke"}]
    )
    assert raw.parse().choices[0].message.content == answer.content
    assert float(raw.headers[CONFIDENCE_HEADER]) == expected
    assert (raw.headers.get(LOW_HEADER) == "true") is low
    (record,) = await records.wait_for(1)
    assert record.confidence == expected
    assert record.output_text is None  # kept only while enriching, never exported
    samples = await scrape(sidecar.admin_url)
    assert total(samples, CONFIDENCE + "_sum") == expected
    assert total(samples, LOW) == (1 if low else 0)


async def post_raw(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body bytes exactly as an app receives them."""
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        return response.status, dict(response.headers), await response.read()


def normalise_ids(body: bytes, record: CallRecord) -> bytes:
    """The body with this call's response id blanked (the simulator derives ids from the
    upstream request, which differs once logprobs are asked for)."""
    assert record.response_id is not None
    return body.replace(record.response_id.encode(), b"<id>")


@pytest.mark.parametrize("stream", [False, True])
async def test_request_logprobs_leaves_the_apps_response_byte_identical(
    sidecar_factory: SidecarFactory,
    records: RecordingSink,
    simulator: RunningSimulator,
    stream: bool,
) -> None:
    plain = await sidecar_factory()
    asking = await sidecar_factory({"confidence": {"request_logprobs": True}})
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "same bytes please"}],
        "stream": stream,
    }
    status_plain, _, bytes_plain = await post_raw(plain.proxy_url + CHAT, body)
    status_asking, headers_asking, bytes_asking = await post_raw(asking.proxy_url + CHAT, body)
    assert status_plain == status_asking == 200
    sent = orjson.loads(simulator.sim.received[-1].body)
    assert sent["logprobs"] is True  # the sidecar asked upstream
    record_plain, record_asking = await records.wait_for(2)
    assert b'"logprobs":{' not in bytes_asking and b'"logprobs": {' not in bytes_asking
    assert normalise_ids(bytes_asking, record_asking) == normalise_ids(bytes_plain, record_plain)
    assert record_plain.confidence is None
    assert record_asking.confidence is not None and 0 < record_asking.confidence < 1
    assert (CONFIDENCE_HEADER in headers_asking) is not stream
