"""Gemini's wire format: generateContent, streamGenerateContent, countTokens, embedContent."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from aiohttp import web

from sidecar.simulate.call import Answer, Call, Usage
from sidecar.simulate.streaming import Responder, sse
from sidecar.simulate.text import (
    TokenChoice,
    count_prompt_tokens,
    embedding_vector,
    seed_of,
)

JSON = "application/json; charset=UTF-8"
EVENT_STREAM = "text/event-stream"
_FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS"}
_PRETTY = orjson.OPT_INDENT_2


def headers(call: Call) -> dict[str, str]:
    """The response headers Google sends with every reply."""
    return {"Server-Timing": f"gfet4t7; dur={int(call.ttft_s * 1000)}", "Vary": "Origin"}


def prompt_of(payload: dict[str, Any]) -> list[Any]:
    """The parts of a generateContent request that count as input."""
    return [payload.get("systemInstruction"), payload.get("contents")]


def usage_json(usage: Usage, final: bool = True) -> dict[str, Any]:
    """usageMetadata; like Google, zero cache and thought counts are left out."""
    prompt_details = [{"modality": "TEXT", "tokenCount": usage.input_tokens}]
    if not final:
        return {
            "promptTokenCount": usage.input_tokens,
            "totalTokenCount": usage.input_tokens,
            "promptTokensDetails": prompt_details,
        }
    metadata: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": usage.total_tokens,
    }
    if usage.cache_read_tokens:
        metadata["cachedContentTokenCount"] = usage.cache_read_tokens
    metadata["promptTokensDetails"] = prompt_details
    if usage.cache_read_tokens:
        metadata["cacheTokensDetails"] = [
            {"modality": "TEXT", "tokenCount": usage.cache_read_tokens}
        ]
    if usage.output_tokens:
        metadata["candidatesTokensDetails"] = [
            {"modality": "TEXT", "tokenCount": usage.output_tokens}
        ]
    if usage.reasoning_tokens:
        metadata["thoughtsTokenCount"] = usage.reasoning_tokens
    return metadata


def _logprobs_asked(config: dict[str, Any]) -> tuple[bool, int]:
    top = config.get("logprobs")
    return config.get("responseLogprobs") is True, top if isinstance(top, int) else 0


def _logprobs_result(choices: list[TokenChoice], top: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if top > 0:
        result["topCandidates"] = [
            {
                "candidates": [
                    {"token": token, "logProbability": logprob} for token, logprob in c.top(top)
                ]
            }
            for c in choices
        ]
    result["chosenCandidates"] = [{"token": c.token, "logProbability": c.logprob} for c in choices]
    return result


def _candidate(index: int, text: str) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if index:
        candidate["index"] = index
    return candidate


async def generate_content(call: Call, stream: bool) -> web.StreamResponse:
    """POST /v1beta/models/{model}:generateContent or :streamGenerateContent."""
    payload = call.payload
    config = payload.get("generationConfig")
    config = config if isinstance(config, dict) else {}
    prompt = prompt_of(payload)
    count = config.get("candidateCount")
    count = count if isinstance(count, int) and count > 0 else 1
    answers = [call.answer(prompt, config.get("maxOutputTokens"), i) for i in range(count)]
    usage = call.usage(count_prompt_tokens(prompt), answers)
    logprobs, top = _logprobs_asked(config)
    tail = {
        "modelVersion": call.profile.reported_model,
        "responseId": base64.urlsafe_b64encode(call.request_seed).decode().rstrip("="),
    }
    responder = Responder(call, headers(call))
    if stream:
        return await _stream(responder, answers, usage, tail, logprobs, top)
    confidence = call.profile.token_confidence
    candidates = []
    for index, answer in enumerate(answers):
        candidate = _candidate(index, answer.text)
        candidate["finishReason"] = _FINISH_REASONS[answer.finish_reason]
        choices = answer.choices(confidence, max(top, 1))
        if choices:
            candidate["avgLogprobs"] = sum(c.logprob for c in choices) / len(choices)
        if logprobs:
            candidate["logprobsResult"] = _logprobs_result(choices, top)
        candidates.append(candidate)
    body = {"candidates": candidates, "usageMetadata": usage_json(usage), **tail}
    chunks = max(len(answer.chunks(call.chunk_size)) for answer in answers)
    return await responder.send_body(orjson.dumps(body, option=_PRETTY), JSON, chunks)


async def _stream(
    responder: Responder,
    answers: list[Answer],
    usage: Usage,
    tail: dict[str, Any],
    logprobs: bool,
    top: int,
) -> web.StreamResponse:
    call = responder.call
    as_sse = call.request.query.get("alt") == "sse"
    await responder.start(EVENT_STREAM if as_sse else JSON)
    size = call.chunk_size
    chunked = [answer.chunks(size) for answer in answers]
    confidence = call.profile.token_confidence
    scored = [answer.choices(confidence, max(top, 1)) if logprobs else [] for answer in answers]
    steps = max(len(chunks) for chunks in chunked)
    for step in range(steps):
        last = step == steps - 1
        candidates = []
        for index, chunks in enumerate(chunked):
            if step >= len(chunks):
                continue
            candidate = _candidate(index, "".join(chunks[step]))
            if step == len(chunks) - 1:
                candidate["finishReason"] = _FINISH_REASONS[answers[index].finish_reason]
            if logprobs:
                part = scored[index][step * size : step * size + len(chunks[step])]
                candidate["logprobsResult"] = _logprobs_result(part, top)
            candidates.append(candidate)
        data = {"candidates": candidates, "usageMetadata": usage_json(usage, last), **tail}
        if as_sse:
            frame = sse(orjson.dumps(data), newline=b"\r\n")
        else:
            frame = (b"[" if step == 0 else b"\n,\r\n") + orjson.dumps(data, option=_PRETTY)
        await responder.chunk(frame)
    return await responder.finish(b"" if as_sse else b"\n]")


async def count_tokens(call: Call) -> web.StreamResponse:
    """POST /v1beta/models/{model}:countTokens."""
    payload = call.payload
    inner = payload.get("generateContentRequest")
    tokens = count_prompt_tokens(prompt_of(inner if isinstance(inner, dict) else payload))
    body = {
        "totalTokens": tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}],
    }
    return await Responder(call, headers(call)).send_body(
        orjson.dumps(body, option=_PRETTY), JSON, chunks=0
    )


async def embed_content(call: Call) -> web.StreamResponse:
    """POST /v1beta/models/{model}:embedContent."""
    payload = call.payload
    dimensions = payload.get("outputDimensionality")
    if not isinstance(dimensions, int) or dimensions <= 0:
        dimensions = call.profile.embedding_dimensions
    vector = embedding_vector(seed_of(orjson.dumps(payload.get("content"))), dimensions)
    body = {"embedding": {"values": vector.tolist()}}
    return await Responder(call, headers(call)).send_body(
        orjson.dumps(body, option=_PRETTY), JSON, chunks=0
    )
