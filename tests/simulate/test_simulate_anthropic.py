"""The official anthropic SDK accepts simulated Messages replies, whole and streamed."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import orjson
import pytest

from sidecar.protocols.sse import SSEDecoder
from sidecar.simulate.profiles import default_profiles
from sidecar.simulate.simulator import RunningSimulator
from sidecar.simulate.text import count_tokens

SYSTEM = "You are terse."
PROMPT = "Explain the sidecar pattern in two sentences, please. " * 8
MESSAGES = [{"role": "user", "content": PROMPT}]
PROFILES = default_profiles()


def expected_usage(model: str) -> dict[str, int]:
    """Anthropic's usage for SYSTEM + PROMPT under `model`'s profile."""
    profile = PROFILES[model]
    total = count_tokens(SYSTEM) + count_tokens(PROMPT)
    read = int(total * profile.cache_read_share)
    write = int(total * profile.cache_write_share)
    return {
        "input_tokens": total - read - write,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
        "output_tokens": profile.output_tokens,
    }


def usage_of(usage: Any) -> dict[str, int]:
    return {key: getattr(usage, key) for key in expected_usage("claude-sonnet-4")}


@pytest.mark.parametrize("model", ["claude-sonnet-4", "claude-3-5-haiku-latest"])
async def test_message_usage_matches_profile(anthropic_client: Any, model: str) -> None:
    message = await anthropic_client.messages.create(
        model=model, max_tokens=1000, system=SYSTEM, messages=MESSAGES
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == PROFILES[model].reported_model
    assert message.stop_reason == "end_turn"
    assert len(message.content[0].text.split()) == PROFILES[model].output_tokens
    assert usage_of(message.usage) == expected_usage(model)


async def test_sonnet_reads_from_cache_and_haiku_writes(anthropic_client: Any) -> None:
    sonnet = expected_usage("claude-sonnet-4")
    haiku = expected_usage("claude-3-5-haiku-latest")
    assert sonnet["cache_read_input_tokens"] > 0 == sonnet["cache_creation_input_tokens"]
    assert haiku["cache_creation_input_tokens"] > 0 == haiku["cache_read_input_tokens"]


async def test_max_tokens_stop_reason(anthropic_client: Any) -> None:
    message = await anthropic_client.messages.create(
        model="claude-sonnet-4", max_tokens=3, messages=MESSAGES
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


async def test_stream_through_sdk(anthropic_client: Any) -> None:
    whole = await anthropic_client.messages.create(
        model="claude-sonnet-4", max_tokens=1000, system=SYSTEM, messages=MESSAGES
    )
    async with anthropic_client.messages.stream(
        model="claude-sonnet-4", max_tokens=1000, system=SYSTEM, messages=MESSAGES
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == whole.content[0].text == final.content[0].text
    assert final.stop_reason == "end_turn"
    assert usage_of(final.usage) == expected_usage("claude-sonnet-4")


async def test_stream_wire_format(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    body = {
        "model": "claude-sonnet-4",
        "max_tokens": 1000,
        "system": SYSTEM,
        "messages": MESSAGES,
        "stream": True,
    }
    async with http.post(sim.base_url + "/v1/messages", json=body) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["request-id"].startswith("req_")
        events = list(SSEDecoder().feed(await response.read()))
    names = [name.decode() if name else None for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[3:-3] == ["content_block_delta"] * PROFILES["claude-sonnet-4"].output_tokens
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    decoded = [orjson.loads(data) for _, data in events]
    assert [event["type"] for event in decoded] == names
    start_usage = decoded[0]["message"]["usage"]
    expected = expected_usage("claude-sonnet-4")
    assert start_usage["input_tokens"] == expected["input_tokens"]
    assert start_usage["cache_read_input_tokens"] == expected["cache_read_input_tokens"]
    assert start_usage["output_tokens"] == 1
    assert decoded[-2]["usage"] == {"output_tokens": expected["output_tokens"]}
    assert decoded[-2]["delta"]["stop_reason"] == "end_turn"


async def test_count_tokens(anthropic_client: Any) -> None:
    counted = await anthropic_client.messages.count_tokens(
        model="claude-sonnet-4", system=SYSTEM, messages=MESSAGES
    )
    assert counted.input_tokens == count_tokens(SYSTEM) + count_tokens(PROMPT)


async def test_anthropic_sends_bearer_auth_and_version(
    sim: RunningSimulator, anthropic_client: Any
) -> None:
    await anthropic_client.messages.create(model="claude-sonnet-4", max_tokens=5, messages=MESSAGES)
    seen = sim.simulator.received[-1]
    assert seen.path_qs == "/v1/messages"
    assert "anthropic-version" in seen.headers
    assert orjson.loads(seen.body)["max_tokens"] == 5


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
    ],
)
async def test_errors_arrive_as_typed_exceptions(
    anthropic_client: Any, status: int, error: type[Exception], kind: str
) -> None:
    with pytest.raises(error) as caught:
        await anthropic_client.messages.create(
            model="claude-sonnet-4",
            max_tokens=10,
            messages=MESSAGES,
            extra_headers={"x-sim-status": str(status)},
        )
    exc: Any = caught.value
    assert exc.status_code == status
    assert exc.body["type"] == "error"
    assert exc.body["error"]["type"] == kind
    if status == 429:
        assert exc.response.headers["retry-after"] == "1"


async def test_missing_max_tokens_is_a_bad_request(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    body = {"model": "claude-sonnet-4", "messages": MESSAGES}
    async with http.post(sim.base_url + "/v1/messages", json=body) as response:
        assert response.status == 400
        error = await response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
