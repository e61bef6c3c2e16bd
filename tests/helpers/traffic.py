"""One wave of mixed traffic through a sidecar: every protocol, streams, errors, client and
sidecar retries, logprobs, temperature-0 repeats, an unpriced model, both arms of a split
experiment with feedback on every call, shadow pairs (EXPERIMENTS), and a Realtime session
(a text and an audio response, an `error` event). Returns how many calls
the sidecar saw, so a caller can wait until Prometheus has scraped them all."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import openai
import pytest

from tests.helpers.realtime import sdk_turn
from tests.helpers.sdk import API_KEY, SDKClients
from tests.helpers.simulator import RunningSimulator

QUESTION: list[Any] = [{"role": "user", "content": "Which model should we route this ticket to?"}]
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "Summarise the outage."}]}]}
# The SDK waits this long between its retries (the simulator's Retry-After).
RETRY_AFTER_S = "0.01"
UNPRICED_MODEL = "acme-finetune-1"
SPLIT_MODEL = "gpt-4.1-mini"
ROLLOUT_MODEL = "gpt-4.1"
# Every gpt-4o-mini call is copied to gpt-4o (shadow pairs, both priced); gpt-4.1-mini calls
# are split between it and gpt-4.1 by user (stop-loss configured: its trip counters exist).
EXPERIMENTS: list[dict[str, Any]] = [
    {
        "name": "e2e-split",
        "match": {"model": SPLIT_MODEL},
        "key_header": "x-user-id",
        "control": {"weight": 50},
        "candidates": [{"model": "gpt-4.1", "weight": 50}],
        "stop_loss": {},
    },
    {
        "name": "e2e-shadow",
        "mode": "shadow",
        "match": {"model": "gpt-4o-mini"},
        "candidates": [{"model": "gpt-4o", "weight": 100}],
        "shadow": {"max_concurrency": 64, "max_per_second": 1000},
    },
    # A staged rollout judged by the sidecar alone: it holds at 50 % for the whole test (far
    # too few calls to advance), so both arms carry calls and every gate has a value.
    {
        "name": "e2e-rollout",
        "match": {"model": ROLLOUT_MODEL},
        "candidates": [{"model": "gpt-4o-mini"}],
        "stop_loss": {"max_cost_ratio": 5},
        "rollout": {"steps": [50, 100], "min_calls": 100000, "evaluation_interval": 0.2},
    },
]
# Users whose keys land in both arms of e2e-split.
USERS = [f"user-{index}" for index in range(8)]


async def _openai(base: str, sdk: SDKClients) -> int:
    """OpenAI chat (logprobs, temperature-0 repeats, streams, failures), embeddings."""
    client = sdk.openai(base)
    calls = 0
    # Deterministic and sure of itself: repeats give `same`, confidence is high.
    for _ in range(2):
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=QUESTION, temperature=0, logprobs=True
        )
        calls += 1
    # Not repeatable at temperature 0: repeats give `different` (sometimes `same`).
    for _ in range(3):
        await client.chat.completions.create(
            model="gpt-4o", messages=QUESTION, temperature=0, logprobs=True
        )
        calls += 1
    # Unsure of its tokens (low confidence) and flaky: its 429s and 500s are errors too.
    for _ in range(3):
        with contextlib.suppress(openai.APIStatusError):
            await client.chat.completions.create(
                model="gpt-4.1-nano", messages=QUESTION, logprobs=True
            )
        calls += 1
    for model in ("gpt-4o-mini", "o3-mini"):  # o3-mini reports reasoning tokens
        stream = await client.chat.completions.create(model=model, messages=QUESTION, stream=True)
        async for _chunk in stream:
            pass
        calls += 1
    await client.embeddings.create(model="text-embedding-3-small", input="refund policy")
    await client.chat.completions.create(model=UNPRICED_MODEL, messages=QUESTION)
    calls += 2
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=QUESTION, extra_headers={"x-sim-status": "500"}
        )
    calls += 1
    # The official SDK retrying a rate limit twice: three calls, two of them client retries.
    retrying = sdk.openai(base, max_retries=2)
    with pytest.raises(openai.RateLimitError):
        await retrying.chat.completions.create(
            model="gpt-4o-mini",
            messages=QUESTION,
            extra_headers={"x-sim-status": "429", "x-sim-retry-after": RETRY_AFTER_S},
        )
    calls += 3
    return calls


async def _anthropic(base: str, sdk: SDKClients, simulator: RunningSimulator) -> int:
    """Anthropic messages, plain and streamed; one 503 the sidecar's retry policy absorbs."""
    client = sdk.anthropic(base)
    simulator.sim.fail_next(1, status=503, model="claude-3-5-haiku-latest")
    await client.messages.create(model="claude-3-5-haiku-latest", max_tokens=64, messages=QUESTION)
    async with client.messages.stream(
        model="claude-sonnet-4", max_tokens=64, messages=QUESTION
    ) as stream:
        await stream.get_final_message()
    return 2


async def _gemini(base: str) -> int:
    """Gemini generateContent and streamGenerateContent (no official SDK: plain HTTP)."""
    async with aiohttp.ClientSession(headers={"x-goog-api-key": API_KEY}) as http:
        for model, method in (
            ("gemini-2.5-flash", "generateContent"),
            ("gemini-2.0-flash", "streamGenerateContent?alt=sse"),
        ):
            async with http.post(f"{base}/v1beta/models/{model}:{method}", json=GEMINI_BODY) as r:
                assert r.status == 200, await r.text()
                await r.read()
    return 2


async def _experiment(base: str, sdk: SDKClients) -> int:
    """Split calls for every user, each with feedback (edit time, a hallucination)."""
    client = sdk.openai(base)
    models = set()
    async with aiohttp.ClientSession() as http:
        for user in USERS:
            raw = await client.chat.completions.with_raw_response.create(
                model=SPLIT_MODEL, messages=QUESTION, extra_headers={"x-user-id": user}
            )
            models.add(raw.parse().model)
            request_id = raw.headers["x-model-sidecar-request-id"]
            for feedback in (
                {"outcome": "edited", "edit_seconds": 30},
                {"outcome": "hallucination"},
                {"outcome": "accepted", "score": 0.5},
            ):
                body = {"request_id": request_id, **feedback}
                async with http.post(f"{base}/_sidecar/feedback", json=body) as response:
                    assert response.status == 200, await response.text()
    assert len(models) == 2, models  # both arms
    return len(USERS)


async def _rollout(base: str, sdk: SDKClients) -> int:
    """Calls of the staged rollout, on both arms (it holds at 50 %)."""
    client = sdk.openai(base)
    models = set()
    calls = 0
    while len(models) < 2 or calls < 12:
        answer = await client.chat.completions.create(model=ROLLOUT_MODEL, messages=QUESTION)
        models.add(answer.model)
        calls += 1
        assert calls < 200, models
    return calls


async def _realtime(base: str, sdk: SDKClients) -> int:
    """A Realtime session through the SDK's realtime client: a text answer, an event the API
    refuses (an `error` event), an audio answer."""
    client = sdk.openai(base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await sdk_turn(connection, "Route this caller to billing?")
        await connection.send({"type": "no.such.event"})
        await sdk_turn(connection, None, output_modalities=["audio"])
    return 2


async def send_wave(base: str, sdk: SDKClients, simulator: RunningSimulator) -> int:
    """Send one wave of every kind of call through the sidecar at `base`; returns the calls
    the app made (shadow copies come on top: wait for those with `shadow_calls`)."""
    counts = await asyncio.gather(
        _openai(base, sdk),
        _anthropic(base, sdk, simulator),
        _gemini(base),
        _experiment(base, sdk),
        _rollout(base, sdk),
        _realtime(base, sdk),
    )
    return sum(counts)
