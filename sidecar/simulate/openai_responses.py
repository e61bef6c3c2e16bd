"""OpenAI's Responses API: POST /v1/responses, whole or as typed stream events."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from sidecar.simulate.call import Answer, Call, Usage
from sidecar.simulate.openai_wire import EVENT_STREAM, JSON, OPENAI, Dialect, logprob_entries
from sidecar.simulate.streaming import Responder, sse
from sidecar.simulate.text import count_prompt_tokens


def usage_json(usage: Usage) -> dict[str, Any]:
    """Usage in the Responses shape; output tokens include reasoning."""
    output = usage.output_tokens + usage.reasoning_tokens
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + output,
    }


def _top_logprobs(payload: dict[str, Any]) -> int | None:
    """How many alternatives to report per token, or None when logprobs were not asked."""
    include = payload.get("include")
    top = payload.get("top_logprobs")
    if isinstance(include, list) and "message.output_text.logprobs" in include:
        return top if isinstance(top, int) else 0
    return top if isinstance(top, int) and top > 0 else None


def _response(call: Call, status: str, output: list[Any], usage: Usage | None) -> dict[str, Any]:
    payload = call.payload
    incomplete = None
    if status == "incomplete":
        incomplete = {"reason": "max_output_tokens"}
    return {
        "id": "resp_" + call.ident(48),
        "object": "response",
        "created_at": call.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": payload.get("instructions"),
        "max_output_tokens": payload.get("max_output_tokens"),
        "model": call.profile.reported_model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": payload.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": payload.get("store", True),
        "temperature": payload.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": payload.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None if usage is None else usage_json(usage),
        "user": None,
        "metadata": payload.get("metadata") or {},
    }


def _message(call: Call, status: str, content: list[Any]) -> dict[str, Any]:
    return {
        "id": "msg_" + call.ident(48),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _text_part(text: str, logprobs: list[Any]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs}


def _logprobs(call: Call, answer: Answer, top: int | None) -> list[dict[str, Any]]:
    if top is None:
        return []
    return logprob_entries(answer.choices(call.profile.token_confidence, max(top, 1)), top)


async def responses(call: Call, dialect: Dialect = OPENAI) -> web.StreamResponse:
    """POST /v1/responses."""
    payload = call.payload
    prompt = [payload.get("instructions"), payload.get("input")]
    answer = call.answer(prompt, payload.get("max_output_tokens"))
    usage = call.usage(count_prompt_tokens(prompt), [answer])
    status = "completed" if answer.finish_reason == "stop" else "incomplete"
    top = _top_logprobs(payload)
    responder = Responder(call, dialect.headers(call))
    if payload.get("stream") is True:
        return await _stream(responder, answer, usage, status, top)
    part = _text_part(answer.text, _logprobs(call, answer, top))
    body = _response(call, status, [_message(call, status, [part])], usage)
    chunks = len(answer.chunks(call.chunk_size))
    return await responder.send_body(orjson.dumps(body, option=orjson.OPT_INDENT_2), JSON, chunks)


class _Events:
    """Numbers and frames Responses stream events."""

    __slots__ = ("sequence",)

    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse(orjson.dumps(data), kind.encode())


async def _stream(
    responder: Responder, answer: Answer, usage: Usage, status: str, top: int | None
) -> web.StreamResponse:
    call = responder.call
    event = _Events()
    item_id = "msg_" + call.ident(48)
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    await responder.start(EVENT_STREAM)
    await responder.event(
        event("response.created", response=_response(call, "in_progress", [], None))
        + event("response.in_progress", response=_response(call, "in_progress", [], None))
    )
    opening = event(
        "response.output_item.added",
        output_index=0,
        item=_message(call, "in_progress", []),
    ) + event("response.content_part.added", part=_text_part("", []), **where)
    await responder.chunk(opening, output=False)
    logprobs = _logprobs(call, answer, top)
    position = 0
    for tokens in answer.chunks(call.chunk_size):
        if not tokens:
            continue
        entries = logprobs[position : position + len(tokens)]
        position += len(tokens)
        delta = event(
            "response.output_text.delta", delta="".join(tokens), logprobs=entries, **where
        )
        await responder.chunk(delta)
    part = _text_part(answer.text, logprobs)
    message = _message(call, status, [part])
    closing = (
        event("response.output_text.done", text=answer.text, logprobs=logprobs, **where)
        + event("response.content_part.done", part=part, **where)
        + event("response.output_item.done", output_index=0, item=message)
    )
    final = "response.completed" if status == "completed" else "response.incomplete"
    closing += event(final, response=_response(call, status, [message], usage))
    return await responder.finish(closing)
