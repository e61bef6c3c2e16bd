"""OpenAI's wire format: chat completions, completions, embeddings and the model list."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from sidecar.simulate.call import Answer, Call, Usage
from sidecar.simulate.profiles import ModelProfile
from sidecar.simulate.streaming import Responder, sse
from sidecar.simulate.text import (
    TokenChoice,
    count_prompt_tokens,
    embedding_vector,
    encode_embedding,
    seed_of,
)

JSON = "application/json"
EVENT_STREAM = "text/event-stream; charset=utf-8"
DONE = b"data: [DONE]\n\n"


def headers(call: Call) -> dict[str, str]:
    """The response headers OpenAI sends with every reply."""
    return {
        "x-request-id": "req_" + call.ident(32),
        "openai-processing-ms": str(int(call.ttft_s * 1000)),
        "openai-version": "2020-10-01",
        **call.quota_headers,
    }


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between OpenAI and a server that speaks its wire format (Azure OpenAI)."""

    headers: Callable[[Call], dict[str, str]]
    # OpenAI names the service tier in chat replies; Azure does not.
    service_tier: bool = True
    # Azure's JSON comes with its keys sorted.
    sort_keys: bool = False
    # Azure's content filter verdicts: `prompt_filter_results` of a reply and
    # `content_filter_results` of a choice that carries text (None = not sent).
    prompt_filters: list[dict[str, Any]] | None = None
    choice_filters: dict[str, Any] | None = None

    def dumps(self, body: dict[str, Any], pretty: bool = False) -> bytes:
        """A reply body as this server writes it."""
        option = orjson.OPT_SORT_KEYS if self.sort_keys else 0
        return orjson.dumps(body, option=option | (orjson.OPT_INDENT_2 if pretty else 0))

    def choice(self, choice: dict[str, Any], with_text: bool = True) -> dict[str, Any]:
        """A choice with its content filter verdicts, where this server sends them."""
        if self.choice_filters is None:
            return choice
        return {**choice, "content_filter_results": self.choice_filters if with_text else {}}

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        """A whole reply with its prompt filter verdicts, where this server sends them."""
        if self.prompt_filters is None:
            return body
        return {**body, "prompt_filter_results": self.prompt_filters}

    def preamble(self) -> bytes:
        """The event a stream begins with before any choice (Azure: the prompt filter verdicts)."""
        if self.prompt_filters is None:
            return b""
        head = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
        return sse(self.dumps({**head, "prompt_filter_results": self.prompt_filters}))


OPENAI = Dialect(headers=headers)


def fingerprint(profile: ModelProfile) -> str:
    """The profile's `system_fingerprint`, else a stable one derived from its reported model."""
    if profile.system_fingerprint is not None:
        return profile.system_fingerprint
    return "fp_" + seed_of(profile.reported_model.encode()).hex()[:10]


def usage_json(usage: Usage) -> dict[str, Any]:
    """Usage in the chat and completions shape; completion tokens include reasoning."""
    completion = usage.output_tokens + usage.reasoning_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": completion,
        "total_tokens": usage.input_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def logprob_entries(choices: Iterable[TokenChoice], top: int) -> list[dict[str, Any]]:
    """`logprobs.content` entries: token, logprob, bytes and the `top` most likely tokens."""
    return [
        {
            "token": choice.token,
            "logprob": choice.logprob,
            "bytes": list(choice.token.encode()),
            "top_logprobs": [
                {"token": token, "logprob": logprob, "bytes": list(token.encode())}
                for token, logprob in choice.top(top)
            ],
        }
        for choice in choices
    ]


def wants_logprobs(payload: dict[str, Any]) -> tuple[bool, int]:
    """Whether chat logprobs were asked for, and how many top alternatives."""
    top = payload.get("top_logprobs")
    return payload.get("logprobs") is True, top if isinstance(top, int) else 0


def choice_count(payload: dict[str, Any]) -> int:
    """The request's `n` (number of choices), at least 1."""
    n = payload.get("n")
    return n if isinstance(n, int) and n > 0 else 1


def include_usage(payload: dict[str, Any]) -> bool:
    """Whether a stream should end with a usage chunk."""
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


async def chat_completions(call: Call, dialect: Dialect = OPENAI) -> web.StreamResponse:
    """POST /v1/chat/completions, whole or streamed."""
    payload = call.payload
    messages = payload.get("messages")
    max_tokens = payload.get("max_completion_tokens", payload.get("max_tokens"))
    answers = [call.answer(messages, max_tokens, i) for i in range(choice_count(payload))]
    usage = call.usage(count_prompt_tokens(messages), answers)
    model = call.profile.reported_model
    base: dict[str, Any] = {
        "id": "chatcmpl-" + call.ident(),
        "object": "chat.completion",
        "created": call.created,
        "model": model,
    }
    logprobs, top = wants_logprobs(payload)
    confidence = call.profile.token_confidence
    responder = Responder(call, dialect.headers(call))
    if payload.get("stream") is True:
        return await _stream_chat(responder, dialect, base, answers, usage, logprobs, top)
    choices = []
    for index, answer in enumerate(answers):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text,
            "refusal": None,
            "annotations": [],
        }
        choice_logprobs = None
        if logprobs:
            entries = logprob_entries(answer.choices(confidence, max(top, 1)), top)
            choice_logprobs = {"content": entries, "refusal": None}
        choice = {
            "index": index,
            "message": message,
            "logprobs": choice_logprobs,
            "finish_reason": answer.finish_reason,
        }
        choices.append(dialect.choice(choice))
    body = {**base, "choices": choices, "usage": usage_json(usage)}
    if dialect.service_tier:
        body["service_tier"] = "default"
    body["system_fingerprint"] = fingerprint(call.profile)
    chunks = max(len(answer.chunks(call.chunk_size)) for answer in answers)
    return await responder.send_body(dialect.dumps(dialect.reply(body), pretty=True), JSON, chunks)


async def _stream_chat(
    responder: Responder,
    dialect: Dialect,
    base: dict[str, Any],
    answers: list[Answer],
    usage: Usage,
    logprobs: bool,
    top: int,
) -> web.StreamResponse:
    call = responder.call
    with_usage = include_usage(call.payload)
    head = {**base, "object": "chat.completion.chunk"}
    if dialect.service_tier:
        head["service_tier"] = "default"
    head["system_fingerprint"] = fingerprint(call.profile)
    trailer: dict[str, Any] = {"usage": None} if with_usage else {}

    def event(
        index: int, delta: dict[str, Any], lp: Any = None, finish: str | None = None
    ) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish}
        choice = dialect.choice(choice, with_text=bool(delta.get("content")))
        return sse(dialect.dumps({**head, "choices": [choice], **trailer}))

    await responder.start(EVENT_STREAM)
    preamble = dialect.preamble()
    if preamble:
        await responder.event(preamble)
    for index in range(len(answers)):
        opening = {"role": "assistant", "content": "", "refusal": None}
        await responder.chunk(event(index, opening), output=False)
    confidence = call.profile.token_confidence
    chunked = [answer.chunks(call.chunk_size) for answer in answers]
    scored = [answer.choices(confidence, max(top, 1)) if logprobs else [] for answer in answers]
    for step in range(max(len(chunks) for chunks in chunked)):
        for index, chunks in enumerate(chunked):
            if step >= len(chunks) or not chunks[step]:
                continue
            tokens = chunks[step]
            lp = None
            if logprobs:
                start = step * call.chunk_size
                entries = logprob_entries(scored[index][start : start + len(tokens)], top)
                lp = {"content": entries, "refusal": None}
            await responder.chunk(event(index, {"content": "".join(tokens)}, lp))
    closing = b"".join(
        event(index, {}, None, answer.finish_reason) for index, answer in enumerate(answers)
    )
    if with_usage:
        closing += sse(dialect.dumps({**head, "choices": [], "usage": usage_json(usage)}))
    return await responder.finish(closing + DONE)


async def completions(call: Call, dialect: Dialect = OPENAI) -> web.StreamResponse:
    """POST /v1/completions (legacy text completion), whole or streamed."""
    payload = call.payload
    prompt = payload.get("prompt")
    answers = [
        call.answer(prompt, payload.get("max_tokens"), i) for i in range(choice_count(payload))
    ]
    usage = call.usage(count_prompt_tokens(prompt), answers)
    base: dict[str, Any] = {
        "id": "cmpl-" + call.ident(),
        "object": "text_completion",
        "created": call.created,
        "model": call.profile.reported_model,
    }
    top = payload.get("logprobs")
    top = top if isinstance(top, int) and not isinstance(top, bool) else None
    confidence = call.profile.token_confidence
    responder = Responder(call, dialect.headers(call))
    if payload.get("stream") is True:
        return await _stream_completions(responder, dialect, base, answers, usage, top)
    choices = [
        dialect.choice(
            {
                "text": answer.text,
                "index": index,
                "logprobs": None if top is None else _legacy_logprobs(answer, confidence, top, 0),
                "finish_reason": answer.finish_reason,
            }
        )
        for index, answer in enumerate(answers)
    ]
    body = {**base, "choices": choices, "usage": _legacy_usage(usage)}
    chunks = max(len(answer.chunks(call.chunk_size)) for answer in answers)
    return await responder.send_body(dialect.dumps(dialect.reply(body), pretty=True), JSON, chunks)


async def _stream_completions(
    responder: Responder,
    dialect: Dialect,
    base: dict[str, Any],
    answers: list[Answer],
    usage: Usage,
    top: int | None,
) -> web.StreamResponse:
    call = responder.call
    with_usage = include_usage(call.payload)
    trailer: dict[str, Any] = {"usage": None} if with_usage else {}
    confidence = call.profile.token_confidence
    await responder.start(EVENT_STREAM)
    preamble = dialect.preamble()
    if preamble:
        await responder.event(preamble)
    for index, answer in enumerate(answers):
        offset = 0
        for tokens in answer.chunks(call.chunk_size):
            if not tokens:
                continue
            lp = None
            if top is not None:
                part = Answer(tokens, answer.finish_reason, answer.seed)
                lp = _legacy_logprobs(part, confidence, top, offset)
            text = "".join(tokens)
            offset += len(text)
            choice = {"text": text, "index": index, "logprobs": lp, "finish_reason": None}
            choice = dialect.choice(choice)
            await responder.chunk(sse(dialect.dumps({**base, "choices": [choice], **trailer})))
    closing = b""
    for index, answer in enumerate(answers):
        choice = {
            "text": "",
            "index": index,
            "logprobs": None,
            "finish_reason": answer.finish_reason,
        }
        choice = dialect.choice(choice, with_text=False)
        closing += sse(dialect.dumps({**base, "choices": [choice], **trailer}))
    if with_usage:
        closing += sse(dialect.dumps({**base, "choices": [], "usage": _legacy_usage(usage)}))
    return await responder.finish(closing + DONE)


def _legacy_usage(usage: Usage) -> dict[str, Any]:
    completion = usage.output_tokens + usage.reasoning_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": completion,
        "total_tokens": usage.input_tokens + completion,
    }


def _legacy_logprobs(answer: Answer, confidence: float, top: int, offset: int) -> dict[str, Any]:
    choices = answer.choices(confidence, max(top, 1))
    offsets = []
    for choice in choices:
        offsets.append(offset)
        offset += len(choice.token)
    return {
        "tokens": [choice.token for choice in choices],
        "token_logprobs": [choice.logprob for choice in choices],
        "top_logprobs": [dict(choice.top(top)) for choice in choices],
        "text_offset": offsets,
    }


async def embeddings(call: Call, dialect: Dialect = OPENAI) -> web.StreamResponse:
    """POST /v1/embeddings: one unit vector per input, as floats or base64."""
    payload = call.payload
    raw = payload.get("input")
    inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    dimensions = payload.get("dimensions")
    if not isinstance(dimensions, int) or dimensions <= 0:
        dimensions = call.profile.embedding_dimensions
    encoding = payload.get("encoding_format") or "float"
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": encode_embedding(
                embedding_vector(seed_of(orjson.dumps(item)), dimensions), encoding
            ),
        }
        for index, item in enumerate(inputs)
    ]
    tokens = max(1, count_prompt_tokens(inputs))
    body = {
        "object": "list",
        "data": data,
        "model": call.profile.reported_model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return await Responder(call, dialect.headers(call)).send_body(dialect.dumps(body), JSON)


def model_list(profiles: Iterable[ModelProfile], created: int) -> web.Response:
    """GET /v1/models: every profiled model."""
    data = [
        {"id": profile.name, "object": "model", "created": created, "owned_by": "system"}
        for profile in profiles
    ]
    body = orjson.dumps({"object": "list", "data": data}, option=orjson.OPT_INDENT_2)
    return web.Response(body=body, content_type=JSON)
