"""Ollama's native API: /api/chat, /api/generate, /api/embed, /api/embeddings, /api/tags, /api/show.

Chat and generate stream NDJSON by default (one JSON object a line); the last line has
`done: true`, the `done_reason` and the counts and durations (in nanoseconds). With
`"stream": false` the reply is that last object with the whole answer in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from sidecar.simulate.call import Answer, Call, Usage
from sidecar.simulate.errors import error_response
from sidecar.simulate.profiles import ModelProfile
from sidecar.simulate.streaming import Responder
from sidecar.simulate.text import (
    TokenChoice,
    count_prompt_tokens,
    embedding_vector,
    seed_of,
)

JSON = "application/json; charset=utf-8"
NDJSON = "application/x-ndjson"
VERSION = "0.12.6"
# A model already in memory loads in about a millisecond.
_LOAD_NS = 1_250_000
# Time outside loading, prompt evaluation and generation (sampling, detokenizing).
_OVERHEAD_NS = 350_000
_NS = 1_000_000_000


def created_at(created: int, offset_s: float = 0.0) -> str:
    """A `created_at` stamp as Go writes it (RFC 3339, nanoseconds, trailing zeros dropped)."""
    nanos = round(offset_s * _NS)
    seconds, fraction = divmod(nanos, _NS)
    stamp = datetime.fromtimestamp(created + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:09d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"


def _stream(payload: dict[str, Any]) -> bool:
    return payload.get("stream") is not False


def _num_predict(payload: dict[str, Any]) -> Any:
    options = payload.get("options")
    return options.get("num_predict") if isinstance(options, dict) else None


def _logprobs(payload: dict[str, Any]) -> int | None:
    """How many alternatives per token, or None when logprobs were not asked."""
    if payload.get("logprobs") is not True:
        return None
    top = payload.get("top_logprobs")
    return top if isinstance(top, int) and top > 0 else 0


def _logprob_entries(choices: Iterable[TokenChoice], top: int) -> list[dict[str, Any]]:
    entries = []
    for choice in choices:
        entry: dict[str, Any] = {"token": choice.token, "logprob": choice.logprob}
        if top:
            entry["top_logprobs"] = [
                {"token": token, "logprob": logprob} for token, logprob in choice.top(top)
            ]
        entries.append(entry)
    return entries


def _stats(call: Call, usage: Usage, chunks: int) -> dict[str, Any]:
    """The counts and durations of the last object, from the profile's pace."""
    prompt_eval = round(call.ttft_s * _NS)
    generation = round(call.chunk_interval_s * chunks * _NS)
    return {
        "total_duration": _LOAD_NS + prompt_eval + generation + _OVERHEAD_NS,
        "load_duration": _LOAD_NS,
        # Ollama counts only the prompt tokens it evaluated, not those in its cache.
        "prompt_eval_count": max(1, usage.input_tokens - usage.cache_read_tokens),
        "prompt_eval_duration": prompt_eval,
        # Hidden reasoning is generated too, so it counts as evaluated output.
        "eval_count": usage.output_tokens + usage.reasoning_tokens,
        "eval_duration": generation,
    }


def _done_reason(answer: Answer) -> str:
    return "length" if answer.finish_reason == "length" else "stop"


async def chat(call: Call) -> web.StreamResponse:
    """POST /api/chat."""
    payload = call.payload
    messages = payload.get("messages")
    if messages is not None and not isinstance(messages, list):
        return error_response("ollama", 400, "messages must be a list")
    answer = call.answer(messages, _num_predict(payload))
    usage = call.usage(count_prompt_tokens(messages), [answer])

    def content(text: str) -> dict[str, Any]:
        return {"message": {"role": "assistant", "content": text}}

    finished = {"done_reason": _done_reason(answer), "done": True}
    return await _reply(call, answer, usage, content, finished)


async def generate(call: Call) -> web.StreamResponse:
    """POST /api/generate (an empty prompt only loads the model, as Ollama does)."""
    payload = call.payload
    prompt = payload.get("prompt")
    model = call.profile.reported_model
    if not prompt and not payload.get("images"):
        body = {
            "model": model,
            "created_at": created_at(call.created),
            "response": "",
            "done": True,
            "done_reason": "load",
        }
        return await Responder(call, {}).send_body(orjson.dumps(body), JSON, chunks=0)
    parts = [payload.get("system"), prompt]
    answer = call.answer(parts, _num_predict(payload))
    usage = call.usage(count_prompt_tokens(parts), [answer])
    # Token ids of the conversation so far, for the next call's `context` (deprecated).
    ids = seed_of(answer.seed, b"context")
    size = usage.input_tokens + len(answer.tokens)
    context = [1000 + ids[i % len(ids)] * 100 + i % 97 for i in range(size)]

    def response(text: str) -> dict[str, Any]:
        return {"response": text}

    finished = {"done": True, "done_reason": _done_reason(answer), "context": context}
    return await _reply(call, answer, usage, response, finished)


async def _reply(
    call: Call,
    answer: Answer,
    usage: Usage,
    content: Callable[[str], dict[str, Any]],
    finished: dict[str, Any],
) -> web.StreamResponse:
    """Send an answer whole or as NDJSON.

    `content(text)` makes the part that holds the text; `finished` goes into the last object
    before the counts (chat names the reason before `done`, generate after it).
    """
    payload = call.payload
    model = call.profile.reported_model
    top = _logprobs(payload)
    confidence = call.profile.token_confidence
    scored = answer.choices(confidence, max(top or 0, 1)) if top is not None else []
    chunks = answer.chunks(call.chunk_size)
    stats = _stats(call, usage, len(chunks))
    responder = Responder(call, {})
    if not _stream(payload):
        body: dict[str, Any] = {
            "model": model,
            "created_at": created_at(call.created, call.ttft_s),
            **content(answer.text),
            **finished,
            **stats,
        }
        if top is not None:
            body["logprobs"] = _logprob_entries(scored, top)
        return await responder.send_body(orjson.dumps(body), JSON, len(chunks))
    await responder.start(NDJSON)
    offset = call.ttft_s
    position = 0
    for tokens in chunks:
        if not tokens:
            continue
        line: dict[str, Any] = {
            "model": model,
            "created_at": created_at(call.created, offset),
            **content("".join(tokens)),
            "done": False,
        }
        if top is not None:
            line["logprobs"] = _logprob_entries(scored[position : position + len(tokens)], top)
        position += len(tokens)
        offset += call.chunk_interval_s
        await responder.chunk(orjson.dumps(line) + b"\n")
    last = {"model": model, "created_at": created_at(call.created, offset), **content("")}
    return await responder.finish(orjson.dumps({**last, **finished, **stats}) + b"\n")


def _dimensions(call: Call, payload: dict[str, Any]) -> int:
    dimensions = payload.get("dimensions")
    if isinstance(dimensions, int) and dimensions > 0:
        return dimensions
    return call.profile.embedding_dimensions


async def embed(call: Call) -> web.StreamResponse:
    """POST /api/embed: one vector per input (a string or a list of strings)."""
    payload = call.payload
    raw = payload.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    texts = [item for item in inputs if isinstance(item, str)]
    if len(texts) != len(inputs):
        return error_response("ollama", 400, "invalid input type")
    dimensions = _dimensions(call, payload)
    embeddings = [embedding_vector(seed_of(text.encode()), dimensions).tolist() for text in texts]
    prompt_eval = round(call.ttft_s * _NS)
    body = {
        "model": call.profile.reported_model,
        "embeddings": embeddings,
        "total_duration": _LOAD_NS + prompt_eval + _OVERHEAD_NS,
        "load_duration": _LOAD_NS,
        "prompt_eval_count": count_prompt_tokens(texts),
    }
    return await Responder(call, {}).send_body(orjson.dumps(body), JSON, chunks=0)


async def embeddings(call: Call) -> web.StreamResponse:
    """POST /api/embeddings (the older endpoint): one vector for `prompt`, no counts."""
    prompt = call.payload.get("prompt")
    text = prompt if isinstance(prompt, str) else ""
    vector = embedding_vector(seed_of(text.encode()), call.profile.embedding_dimensions)
    body = {"embedding": vector.tolist()}
    return await Responder(call, {}).send_body(orjson.dumps(body), JSON, chunks=0)


def _tag(name: str) -> str:
    return name if ":" in name else name + ":latest"


def _details(profile: ModelProfile) -> dict[str, Any]:
    family = profile.name.split(":")[0].rstrip("0123456789.") or profile.name
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
    }


def tags(profiles: Iterable[ModelProfile], created: int) -> web.Response:
    """GET /api/tags: every profiled model, as pulled models."""
    models = [
        {
            "name": _tag(profile.name),
            "model": _tag(profile.name),
            "modified_at": created_at(created),
            "size": 2_019_393_189,
            "digest": seed_of(profile.name.encode()).hex() * 2,
            "details": _details(profile),
        }
        for profile in profiles
    ]
    return web.Response(body=orjson.dumps({"models": models}), content_type="application/json")


def show(profile: ModelProfile, created: int) -> web.Response:
    """POST /api/show: what Ollama tells about a model."""
    embedding = "embed" in profile.name or "minilm" in profile.name
    details = _details(profile)
    body = {
        "modelfile": f"FROM {_tag(profile.name)}\n",
        "parameters": 'stop "<|eot_id|>"',
        "template": "{{ .Prompt }}",
        "details": details,
        "model_info": {
            "general.architecture": details["family"],
            "general.parameter_count": 3_212_749_888,
            f"{details['family']}.context_length": 131072,
            f"{details['family']}.embedding_length": profile.embedding_dimensions,
        },
        "capabilities": ["embedding"] if embedding else ["completion"],
        "modified_at": created_at(created),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def version() -> web.Response:
    """GET /api/version."""
    return web.Response(body=orjson.dumps({"version": VERSION}), content_type="application/json")
