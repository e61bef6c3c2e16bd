"""Gemini's wire format, as the Gemini API and Vertex AI speak it.

generateContent, streamGenerateContent, countTokens, embedContent, batchEmbedContents, and
Vertex's predict for its text-embedding models. `vertex=True` adds what Vertex AI adds: a
`createTime`, the `trafficType` of the usage, billable characters, embedding statistics.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from sidecar.simulate.call import Answer, Call, Usage
from sidecar.simulate.errors import error_response
from sidecar.simulate.streaming import Responder, sse
from sidecar.simulate.text import (
    TokenChoice,
    count_prompt_characters,
    count_prompt_tokens,
    embedding_vector,
    prompt_texts,
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


def create_time(created: int) -> str:
    """Vertex AI's `createTime` (RFC 3339, microseconds) of a reply created at `created`."""
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def usage_json(usage: Usage, final: bool = True, vertex: bool = False) -> dict[str, Any]:
    """usageMetadata; like Google, zero cache and thought counts are left out."""
    prompt_details = [{"modality": "TEXT", "tokenCount": usage.input_tokens}]
    traffic = {"trafficType": "ON_DEMAND"} if vertex else {}
    if not final:
        return {
            "promptTokenCount": usage.input_tokens,
            "totalTokenCount": usage.input_tokens,
            **traffic,
            "promptTokensDetails": prompt_details,
        }
    metadata: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": usage.total_tokens,
        **traffic,
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


async def generate_content(call: Call, stream: bool, vertex: bool = False) -> web.StreamResponse:
    """POST .../models/{model}:generateContent or :streamGenerateContent."""
    payload = call.payload
    config = payload.get("generationConfig")
    config = config if isinstance(config, dict) else {}
    prompt = prompt_of(payload)
    count = config.get("candidateCount")
    count = count if isinstance(count, int) and count > 0 else 1
    answers = [call.answer(prompt, config.get("maxOutputTokens"), i) for i in range(count)]
    usage = call.usage(count_prompt_tokens(prompt), answers)
    logprobs, top = _logprobs_asked(config)
    tail = {"modelVersion": call.profile.reported_model}
    if vertex:
        tail["createTime"] = create_time(call.created)
    tail["responseId"] = base64.urlsafe_b64encode(call.request_seed).decode().rstrip("=")
    responder = Responder(call, headers(call))
    if stream:
        return await _stream(responder, answers, usage, tail, logprobs, top, vertex)
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
    body = {"candidates": candidates, "usageMetadata": usage_json(usage, vertex=vertex), **tail}
    chunks = max(len(answer.chunks(call.chunk_size)) for answer in answers)
    return await responder.send_body(orjson.dumps(body, option=_PRETTY), JSON, chunks)


async def _stream(
    responder: Responder,
    answers: list[Answer],
    usage: Usage,
    tail: dict[str, Any],
    logprobs: bool,
    top: int,
    vertex: bool,
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
        metadata = usage_json(usage, last, vertex)
        data = {"candidates": candidates, "usageMetadata": metadata, **tail}
        if as_sse:
            frame = sse(orjson.dumps(data), newline=b"\r\n")
        else:
            frame = (b"[" if step == 0 else b"\n,\r\n") + orjson.dumps(data, option=_PRETTY)
        await responder.chunk(frame)
    return await responder.finish(b"" if as_sse else b"\n]")


async def count_tokens(call: Call, vertex: bool = False) -> web.StreamResponse:
    """POST .../models/{model}:countTokens."""
    payload = call.payload
    inner = payload.get("generateContentRequest")
    prompt = prompt_of(inner if isinstance(inner, dict) else payload)
    tokens = count_prompt_tokens(prompt)
    body: dict[str, Any] = {"totalTokens": tokens}
    if vertex:
        body["totalBillableCharacters"] = count_prompt_characters(prompt)
    body["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": tokens}]
    return await _send(call, body)


def _dimensions(call: Call, *configs: Any) -> int:
    """`outputDimensionality` from the first config that has it, else the profile's."""
    for config in configs:
        if isinstance(config, dict):
            dimensions = config.get("outputDimensionality")
            if isinstance(dimensions, int) and dimensions > 0:
                return dimensions
    return call.profile.embedding_dimensions


def _embedding(content: Any, dimensions: int) -> list[float]:
    # Seeded by the text alone: the same text gets the same vector from every method.
    text = "".join(prompt_texts(content))
    return embedding_vector(seed_of(text.encode()), dimensions).tolist()


def _embedding_usage(tokens: int, vertex: bool) -> dict[str, Any]:
    """The usage of an embedding call; the Gemini API calls its details `promptTokenDetails`."""
    details = [{"modality": "TEXT", "tokenCount": tokens}]
    if vertex:
        return {
            "promptTokenCount": tokens,
            "totalTokenCount": tokens,
            "promptTokensDetails": details,
        }
    return {"promptTokenCount": tokens, "promptTokenDetails": details}


async def embed_content(call: Call, vertex: bool = False) -> web.StreamResponse:
    """POST .../models/{model}:embedContent (Vertex nests the options in embedContentConfig)."""
    payload = call.payload
    content = payload.get("content")
    dimensions = _dimensions(call, payload, payload.get("embedContentConfig"))
    tokens = count_prompt_tokens(content)
    body: dict[str, Any] = {
        "embedding": {"values": _embedding(content, dimensions)},
        "usageMetadata": _embedding_usage(tokens, vertex),
    }
    if vertex:
        body["truncated"] = False
    return await _send(call, body)


async def batch_embed_contents(call: Call, vertex: bool = False) -> web.StreamResponse:
    """POST .../models/{model}:batchEmbedContents: one embedding per item of `requests`."""
    requests = call.payload.get("requests")
    if not isinstance(requests, list) or not requests:
        message = "* BatchEmbedContentsRequest.requests: requests must not be empty"
        return error_response("gemini", 400, message)
    embeddings = []
    tokens = 0
    for item in requests:
        item = item if isinstance(item, dict) else {}
        content = item.get("content")
        dimensions = _dimensions(call, item, item.get("embedContentConfig"))
        embeddings.append({"values": _embedding(content, dimensions)})
        tokens += count_prompt_tokens(content)
    body = {"embeddings": embeddings, "usageMetadata": _embedding_usage(tokens, vertex)}
    return await _send(call, body)


async def predict(call: Call) -> web.StreamResponse:
    """POST .../models/{model}:predict: Vertex AI's text-embedding models (`instances`)."""
    payload = call.payload
    instances = payload.get("instances")
    if not isinstance(instances, list) or not instances:
        return error_response("gemini", 400, "Instances must not be empty.")
    dimensions = _dimensions(call, payload.get("parameters"))
    predictions = []
    characters = 0
    for instance in instances:
        text = instance.get("content") if isinstance(instance, dict) else None
        text = text if isinstance(text, str) else ""
        statistics = {"truncated": False, "token_count": count_prompt_tokens(text)}
        embedding = {"statistics": statistics, "values": _embedding(text, dimensions)}
        predictions.append({"embeddings": embedding})
        characters += count_prompt_characters(text)
    body = {"predictions": predictions, "metadata": {"billableCharacterCount": characters}}
    return await _send(call, body)


async def _send(call: Call, body: dict[str, Any]) -> web.StreamResponse:
    return await Responder(call, headers(call)).send_body(
        orjson.dumps(body, option=_PRETTY), JSON, chunks=0
    )
