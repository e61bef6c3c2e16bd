"""Amazon Bedrock's runtime wire format: Converse and ConverseStream, and what the
InvokeModel operations share with them (usage, latency, request ids, event-stream frames).

Shapes follow bedrock-runtime's service model (botocore/data/bedrock-runtime/2023-09-30).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from sidecar.simulate.bedrock_errors import validation_error
from sidecar.simulate.call import Call, Usage
from sidecar.simulate.eventstream_encode import encode_frame, event_headers
from sidecar.simulate.streaming import Responder
from sidecar.simulate.text import count_prompt_tokens

JSON = "application/json"
EVENT_STREAM = "application/vnd.amazon.eventstream"
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}
# Bedrock pads every stream event with a `p` field of varying length, so that event sizes do
# not give away the text; clients ignore it.
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_CONVERSE_EVENTS = (
    "messageStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
)
_HEADER_BLOCKS = {name: event_headers(name) for name in (*_CONVERSE_EVENTS, "chunk")}


@dataclass(frozen=True, slots=True)
class Tokens:
    """Usage as Bedrock counts it: `input` excludes cache reads and writes, which come on top;
    `output` includes reasoning tokens."""

    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0

    @classmethod
    def of(cls, usage: Usage, caching: bool = True) -> Tokens:
        """Bedrock's view of a simulated call's usage (`caching` False: a model without a
        prompt cache, whose whole input counts as input)."""
        output = usage.output_tokens + usage.reasoning_tokens
        if not caching:
            return cls(usage.input_tokens, output)
        read, write = usage.cache_read_tokens, usage.cache_write_tokens
        return cls(max(0, usage.input_tokens - read - write), output, read, write)

    @property
    def total(self) -> int:
        """Every token of the call, cached input included."""
        return self.input + self.output + self.cache_read + self.cache_write

    def converse_json(self) -> dict[str, int]:
        """`usage` of Converse and of ConverseStream's `metadata` event (TokenUsage)."""
        return {
            "inputTokens": self.input,
            "outputTokens": self.output,
            "totalTokens": self.total,
            "cacheReadInputTokens": self.cache_read,
            "cacheWriteInputTokens": self.cache_write,
        }

    def invoke_headers(self, latency_ms: int) -> dict[str, str]:
        """The headers InvokeModel answers with; the cache counts only when there are any."""
        headers = {
            "X-Amzn-Bedrock-Invocation-Latency": str(latency_ms),
            "X-Amzn-Bedrock-Output-Token-Count": str(self.output),
            "X-Amzn-Bedrock-Input-Token-Count": str(self.input),
        }
        if self.cache_read:
            headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(self.cache_read)
        if self.cache_write:
            headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(self.cache_write)
        return headers

    def invocation_metrics(self, latency_ms: int, first_byte_ms: int) -> dict[str, int]:
        """`amazon-bedrock-invocationMetrics`, carried by the last event of an invoke stream."""
        metrics = {
            "inputTokenCount": self.input,
            "outputTokenCount": self.output,
            "invocationLatency": latency_ms,
            "firstByteLatency": first_byte_ms,
        }
        if self.cache_read:
            metrics["cacheReadInputTokenCount"] = self.cache_read
        if self.cache_write:
            metrics["cacheWriteInputTokenCount"] = self.cache_write
        return metrics


def headers(call: Call) -> dict[str, str]:
    """The headers Bedrock sends with every reply: a request id (here derived from the request)."""
    return {"x-amzn-RequestId": str(uuid.UUID(bytes=call.request_seed))}


def latency_ms(call: Call, chunks: int) -> int:
    """Milliseconds the simulated model takes to produce `chunks` chunks."""
    return round((call.ttft_s + call.chunk_interval_s * max(0, chunks - 1)) * 1000)


def first_byte_ms(call: Call) -> int:
    """Milliseconds until the first output chunk."""
    return round(call.ttft_s * 1000)


def padding(call: Call, index: int) -> str:
    """The `p` padding of the `index`-th event: 1 to 62 characters, a function of the request."""
    seed = call.request_seed
    return _PADDING[: 1 + (seed[index % len(seed)] + index) % len(_PADDING)]


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """One event-stream frame of a JSON event."""
    block = _HEADER_BLOCKS.get(event_type) or event_headers(event_type)
    return encode_frame(block, orjson.dumps(payload))


class FrameSender:
    """Sends event-stream frames through a Responder, paced and subject to the fault controls.

    With `x-sim-drop-mid-frame: 1` a dropped connection cuts the stream inside a frame (the
    first half of the next frame is sent) instead of between two frames.
    """

    def __init__(self, call: Call, reply_headers: dict[str, str]) -> None:
        self.call = call
        self.responder = Responder(call, reply_headers)
        value = call.request.headers.get("x-sim-drop-mid-frame", "")
        self.mid_frame = value.lower() in ("1", "true", "yes")

    async def start(self) -> None:
        """Send the status line and headers."""
        await self.responder.start(EVENT_STREAM)

    async def opening(self, frame: bytes, first: bool) -> None:
        """An event before the output: the first waits for the time to first token."""
        if first:
            await self.responder.chunk(frame, output=False)
        else:
            await self.responder.event(frame)

    async def output(self, frame: bytes) -> None:
        """An event carrying output, paced one chunk interval after the previous one."""
        frame = await self._maybe_cut(frame)
        await self.responder.chunk(frame)

    async def finish(self, frames: bytes) -> web.StreamResponse:
        """The closing events, then a clean end of the stream."""
        frames = await self._maybe_cut(frames)
        return await self.responder.finish(frames)

    async def _maybe_cut(self, frame: bytes) -> bytes:
        """Send the first half of `frame` when the connection is about to be dropped."""
        drop_after = self.call.controls.drop_after_chunks
        if self.mid_frame and drop_after is not None and self.responder.chunks_sent >= drop_after:
            half = len(frame) // 2
            await self.responder.event(frame[:half])
            return frame[half:]  # the Responder drops the connection before sending this
        return frame


def _inference_config(payload: dict[str, Any]) -> dict[str, Any]:
    config = payload.get("inferenceConfig")
    return config if isinstance(config, dict) else {}


async def converse(call: Call) -> web.StreamResponse:
    """POST /model/{modelId}/converse."""
    return await _converse(call, stream=False)


async def converse_stream(call: Call) -> web.StreamResponse:
    """POST /model/{modelId}/converse-stream."""
    return await _converse(call, stream=True)


async def _converse(call: Call, stream: bool) -> web.StreamResponse:
    payload = call.payload
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return validation_error(
            "A conversation must start with a user message. Try again with a conversation "
            "that starts with a user message."
        )
    prompt = [payload.get("system"), messages]
    answer = call.answer(prompt, _inference_config(payload).get("maxTokens"))
    tokens = Tokens.of(call.usage(count_prompt_tokens(prompt), [answer]))
    stop_reason = STOP_REASONS[answer.finish_reason]
    pieces = answer.chunks(call.chunk_size)
    latency = latency_ms(call, len(pieces))
    if not stream:
        body = {
            "output": {"message": {"role": "assistant", "content": [{"text": answer.text}]}},
            "stopReason": stop_reason,
            "usage": tokens.converse_json(),
            "metrics": {"latencyMs": latency},
        }
        responder = Responder(call, headers(call))
        return await responder.send_body(orjson.dumps(body), JSON, len(pieces))

    sender = FrameSender(call, headers(call))
    await sender.start()
    count = 0

    def frame(event_type: str, event: dict[str, Any]) -> bytes:
        nonlocal count
        event["p"] = padding(call, count)
        count += 1
        return event_frame(event_type, event)

    await sender.opening(frame("messageStart", {"role": "assistant"}), first=True)
    for tokens_of_chunk in pieces:
        if tokens_of_chunk:
            delta = {"contentBlockIndex": 0, "delta": {"text": "".join(tokens_of_chunk)}}
            await sender.output(frame("contentBlockDelta", delta))
    metadata = {"usage": tokens.converse_json(), "metrics": {"latencyMs": latency}}
    return await sender.finish(
        frame("contentBlockStop", {"contentBlockIndex": 0})
        + frame("messageStop", {"stopReason": stop_reason})
        + frame("metadata", metadata)
    )
