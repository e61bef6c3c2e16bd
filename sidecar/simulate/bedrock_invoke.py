"""Amazon Bedrock's InvokeModel and InvokeModelWithResponseStream: the request and response
bodies are the model family's own (Anthropic Messages, Meta Llama, Amazon Nova).

A stream is event-stream frames with `:event-type: chunk` whose JSON payload is
`{"bytes": "<base64 of one family stream event>"}`; the last event carries
`amazon-bedrock-invocationMetrics`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from sidecar.simulate import anthropic_wire
from sidecar.simulate.bedrock_errors import validation_error
from sidecar.simulate.bedrock_wire import (
    JSON,
    STOP_REASONS,
    FrameSender,
    Tokens,
    event_frame,
    first_byte_ms,
    headers,
    latency_ms,
    padding,
)
from sidecar.simulate.call import Answer, Call, Usage
from sidecar.simulate.streaming import Responder
from sidecar.simulate.text import count_prompt_tokens

METRICS_KEY = "amazon-bedrock-invocationMetrics"
_VERSION_SUFFIX = re.compile(r"-v\d+(:\d+)?$")
Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Events:
    """A family's stream events: before the output, one per output chunk, after it."""

    opening: list[Event] = field(default_factory=list)
    output: list[Event] = field(default_factory=list)
    closing: list[Event] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Family:
    """How one model family's bodies look on Bedrock."""

    name: str
    # What is wrong with a body the model refuses, else None.
    check: Callable[[Event], str | None]
    prompt: Callable[[Event], Any]
    max_tokens: Callable[[Event], Any]
    body: Callable[[Call, Answer, Tokens], Event]
    events: Callable[[Call, Answer, Tokens], Events]
    # False for a model without a prompt cache (its whole input counts as input).
    caching: bool = True


# Anthropic Messages on Bedrock: `anthropic_version` in the body, no `model` ------------------


def _anthropic_check(payload: Event) -> str | None:
    for key in ("anthropic_version", "max_tokens", "messages"):
        if key not in payload:
            return f"#: required key [{key}] not found"
    if "model" in payload:
        return "#: extraneous key [model] is not permitted"
    # The accepted versions change over time (SDKs send their own): only the type is checked.
    if not isinstance(payload["anthropic_version"], str):
        return "#/anthropic_version: expected type: String"
    return None


def anthropic_model(call: Call) -> str:
    """The model a Claude reply names: the profile's, else the id without its region prefix,
    vendor and version (`us.anthropic.claude-x-20250514-v1:0` -> `claude-x-20250514`)."""
    if call.profile.response_model:
        return call.profile.response_model
    name = call.model.rsplit("/", 1)[-1]  # an ARN's resource id
    return _VERSION_SUFFIX.sub("", name.partition("anthropic.")[2] or name)


def _anthropic_message(call: Call, tokens: Tokens) -> Event:
    return {
        "id": "msg_bdrk_01" + call.ident(22),
        "type": "message",
        "role": "assistant",
        "model": anthropic_model(call),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _anthropic_usage(tokens, 1),
    }


def _anthropic_usage(tokens: Tokens, output_tokens: int) -> Event:
    usage = Usage(
        input_tokens=tokens.input + tokens.cache_read + tokens.cache_write,
        output_tokens=output_tokens,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
    )
    return anthropic_wire.usage_json(usage, output_tokens)


def _anthropic_body(call: Call, answer: Answer, tokens: Tokens) -> Event:
    message = _anthropic_message(call, tokens)
    message["content"] = [{"type": "text", "text": answer.text}]
    message["stop_reason"] = STOP_REASONS[answer.finish_reason]
    message["usage"] = _anthropic_usage(tokens, tokens.output)
    return message


def _anthropic_events(call: Call, answer: Answer, tokens: Tokens) -> Events:
    block = {"type": "text", "text": ""}
    delta = {"stop_reason": STOP_REASONS[answer.finish_reason], "stop_sequence": None}
    return Events(
        opening=[
            {"type": "message_start", "message": _anthropic_message(call, tokens)},
            {"type": "content_block_start", "index": 0, "content_block": block},
        ],
        output=[
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "".join(chunk)},
            }
            for chunk in answer.chunks(call.chunk_size)
            if chunk
        ],
        closing=[
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": tokens.output}},
            {"type": "message_stop"},
        ],
    )


ANTHROPIC = Family(
    name="anthropic",
    check=_anthropic_check,
    prompt=anthropic_wire.prompt_of,
    max_tokens=lambda payload: payload.get("max_tokens"),
    body=_anthropic_body,
    events=_anthropic_events,
)


# Meta Llama: `prompt` in, `generation` out ------------------------------------------------------


def _llama_check(payload: Event) -> str | None:
    if not isinstance(payload.get("prompt"), str):
        return "#: required key [prompt] not found"
    return None


def _llama_body(call: Call, answer: Answer, tokens: Tokens) -> Event:
    return {
        "generation": answer.text,
        "prompt_token_count": tokens.input,
        "generation_token_count": tokens.output,
        "stop_reason": answer.finish_reason,  # "stop" or "length", as Llama names them
    }


def _llama_events(call: Call, answer: Answer, tokens: Tokens) -> Events:
    output: list[Event] = []
    generated = 0
    for chunk in answer.chunks(call.chunk_size):
        if not chunk:
            continue
        generated += len(chunk)
        output.append(
            {
                "generation": "".join(chunk),
                # Only the first chunk counts the prompt; the generation count is cumulative.
                "prompt_token_count": None if output else tokens.input,
                "generation_token_count": generated,
                "stop_reason": None,
            }
        )
    final = {
        "generation": "",
        "prompt_token_count": None if output else tokens.input,
        "generation_token_count": tokens.output,
        "stop_reason": answer.finish_reason,
    }
    return Events(output=output, closing=[final])


LLAMA = Family(
    name="llama",
    check=_llama_check,
    prompt=lambda payload: payload.get("prompt"),
    max_tokens=lambda payload: payload.get("max_gen_len"),
    body=_llama_body,
    events=_llama_events,
    caching=False,
)


# Amazon Nova: Converse-like `messages` and `inferenceConfig` ------------------------------------


def _nova_check(payload: Event) -> str | None:
    if not isinstance(payload.get("messages"), list):
        return "#: required key [messages] not found"
    return None


def _nova_max_tokens(payload: Event) -> Any:
    config = payload.get("inferenceConfig")
    if not isinstance(config, dict):
        return None
    # Nova's own name is `max_new_tokens`; `maxTokens` is accepted too.
    return config.get("maxTokens", config.get("max_new_tokens"))


def _nova_usage(tokens: Tokens) -> Event:
    return {
        "inputTokens": tokens.input,
        "outputTokens": tokens.output,
        "totalTokens": tokens.total,
        "cacheReadInputTokenCount": tokens.cache_read,
        "cacheWriteInputTokenCount": tokens.cache_write,
    }


def _nova_body(call: Call, answer: Answer, tokens: Tokens) -> Event:
    return {
        "output": {"message": {"content": [{"text": answer.text}], "role": "assistant"}},
        "stopReason": STOP_REASONS[answer.finish_reason],
        "usage": _nova_usage(tokens),
    }


def _nova_events(call: Call, answer: Answer, tokens: Tokens) -> Events:
    return Events(
        opening=[{"messageStart": {"role": "assistant"}}],
        output=[
            {"contentBlockDelta": {"delta": {"text": "".join(chunk)}, "contentBlockIndex": 0}}
            for chunk in answer.chunks(call.chunk_size)
            if chunk
        ],
        closing=[
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": STOP_REASONS[answer.finish_reason]}},
            {"metadata": {"usage": _nova_usage(tokens), "metrics": {}, "trace": {}}},
        ],
    )


NOVA = Family(
    name="nova",
    check=_nova_check,
    prompt=lambda payload: [payload.get("system"), payload.get("messages")],
    max_tokens=_nova_max_tokens,
    body=_nova_body,
    events=_nova_events,
)

# Substrings of model ids (foundation models, inference profiles, their ARNs) by family.
_MARKERS = (("anthropic.", ANTHROPIC), ("meta.", LLAMA), ("amazon.nova", NOVA))


def family_of(model_id: str, payload: Event) -> Family | None:
    """The family of `model_id`; for ids that do not name one (application inference
    profiles, provisioned throughput ARNs) the body's shape decides."""
    lowered = model_id.lower()
    for marker, family in _MARKERS:
        if marker in lowered:
            return family
    if "anthropic_version" in payload:
        return ANTHROPIC
    if "prompt" in payload:
        return LLAMA
    if "messages" in payload:
        return NOVA
    return None


async def invoke(call: Call, stream: bool) -> web.StreamResponse:
    """POST /model/{modelId}/invoke or /invoke-with-response-stream."""
    payload = call.payload
    family = family_of(call.model, payload)
    if family is None:
        return validation_error("The provided model identifier is invalid.")
    problem = family.check(payload)
    if problem is not None:
        return validation_error(
            f"Malformed input request: {problem}, please reformat your input and try again."
        )
    prompt = family.prompt(payload)
    answer = call.answer(prompt, family.max_tokens(payload))
    tokens = Tokens.of(call.usage(count_prompt_tokens(prompt), [answer]), family.caching)
    chunks = len(answer.chunks(call.chunk_size))
    latency = latency_ms(call, chunks)
    if not stream:
        reply_headers = headers(call) | tokens.invoke_headers(latency)
        body = orjson.dumps(family.body(call, answer, tokens))
        return await Responder(call, reply_headers).send_body(body, JSON, chunks)

    events = family.events(call, answer, tokens)
    last = (events.closing or events.output)[-1]
    last[METRICS_KEY] = tokens.invocation_metrics(latency, first_byte_ms(call))
    sender = FrameSender(call, headers(call) | {"X-Amzn-Bedrock-Content-Type": JSON})
    await sender.start()
    index = 0

    def chunk(event: Event) -> bytes:
        nonlocal index
        part = {"bytes": base64.b64encode(orjson.dumps(event)).decode("ascii")}
        part["p"] = padding(call, index)
        index += 1
        return event_frame("chunk", part)

    for position, event in enumerate(events.opening):
        await sender.opening(chunk(event), first=position == 0)
    for event in events.output:
        await sender.output(chunk(event))
    return await sender.finish(b"".join(chunk(event) for event in events.closing))
