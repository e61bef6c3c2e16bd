"""Anthropic's wire format: POST /v1/messages (whole or streamed) and count_tokens."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from sidecar.simulate.call import Call, Usage
from sidecar.simulate.errors import error_response
from sidecar.simulate.streaming import Responder, sse
from sidecar.simulate.text import count_prompt_tokens

JSON = "application/json"
EVENT_STREAM = "text/event-stream; charset=utf-8"
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


def headers(call: Call) -> dict[str, str]:
    """The response headers Anthropic sends with every reply."""
    return {"request-id": "req_" + call.ident(24), **call.quota_headers}


def prompt_of(payload: dict[str, Any]) -> list[Any]:
    """The parts of a Messages request that count as input."""
    return [payload.get("system"), payload.get("messages")]


def usage_json(usage: Usage, output_tokens: int) -> dict[str, Any]:
    """Usage in Anthropic's shape: `input_tokens` excludes cache reads and writes."""
    uncached = max(0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
    return {
        "input_tokens": uncached,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


async def messages(call: Call) -> web.StreamResponse:
    """POST /v1/messages."""
    payload = call.payload
    if not isinstance(payload.get("max_tokens"), int):
        return error_response("anthropic", 400, "max_tokens: Field required", headers=headers(call))
    prompt = prompt_of(payload)
    answer = call.answer(prompt, payload.get("max_tokens"))
    usage = call.usage(count_prompt_tokens(prompt), [answer])
    output_tokens = usage.output_tokens + usage.reasoning_tokens
    stop_reason = _STOP_REASONS[answer.finish_reason]
    message: dict[str, Any] = {
        "id": "msg_01" + call.ident(22),
        "type": "message",
        "role": "assistant",
        "model": call.profile.reported_model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage_json(usage, 1),
    }
    responder = Responder(call, headers(call))
    if payload.get("stream") is not True:
        message["content"] = [{"type": "text", "text": answer.text}]
        message["stop_reason"] = stop_reason
        message["usage"] = usage_json(usage, output_tokens)
        chunks = len(answer.chunks(call.chunk_size))
        return await responder.send_body(orjson.dumps(message), JSON, chunks)

    await responder.start(EVENT_STREAM)
    start = _event("message_start", {"type": "message_start", "message": message})
    await responder.chunk(start, output=False)
    block = {"type": "text", "text": ""}
    await responder.event(
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        + _event("ping", {"type": "ping"})
    )
    for tokens in answer.chunks(call.chunk_size):
        if not tokens:
            continue
        delta = {"type": "text_delta", "text": "".join(tokens)}
        data = {"type": "content_block_delta", "index": 0, "delta": delta}
        await responder.chunk(_event("content_block_delta", data))
    closing = (
        _event("content_block_stop", {"type": "content_block_stop", "index": 0})
        + _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        )
        + _event("message_stop", {"type": "message_stop"})
    )
    return await responder.finish(closing)


async def count_tokens(call: Call) -> web.StreamResponse:
    """POST /v1/messages/count_tokens."""
    tokens = max(1, count_prompt_tokens(prompt_of(call.payload)))
    body = orjson.dumps({"input_tokens": tokens})
    return await Responder(call, headers(call)).send_body(body, JSON, chunks=0)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return sse(orjson.dumps(data), name.encode())
