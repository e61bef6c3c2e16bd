"""OpenAI's Realtime API (the GA event schema) over a WebSocket: `GET /v1/realtime?model=`, and
Azure OpenAI's `/openai/realtime?api-version=&deployment=` and `/openai/v1/realtime?model=`.

A session speaks the client events `session.update`, `conversation.item.create`,
`input_audio_buffer.append` / `.commit` / `.clear`, `response.create` and `response.cancel`,
and answers as the API does: `session.created` first, then `session.updated`,
`conversation.item.added` / `.done`, and per response `response.created`, the output item and
content part events, deltas paced by the model's profile (time to first token, tokens per
second), the `.done` events, `response.done` with usage (input, cached and output tokens, text
and audio apart) and `rate_limits.updated`. Audio output (`output_modalities: ["audio"]`)
is deterministic silence with a text transcript. With server turn detection, appended audio
counts as speech: after `silence_duration_ms` without more, the buffer is committed and a
response starts (`input_audio_buffer.speech_started` / `speech_stopped` / `committed`).

Every message sent and received is kept (`RealtimeLog`): tests compare them, byte for byte,
with what the app saw. `x-sim-*` headers on the upgrade request (and queued faults) refuse
the handshake (`x-sim-status`), fail a response, or drop the connection after a number of
deltas (`x-sim-drop-after-chunks`).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import WSMsgType, web
from multidict import CIMultiDictProxy

from sidecar.simulate.errors import error_response
from sidecar.simulate.faults import Controls, FaultQueue
from sidecar.simulate.profiles import ModelProfile
from sidecar.simulate.text import count_tokens, generate_tokens, seed_of

# The subprotocol the API selects, and the prefix of the browsers' key-carrying one.
SUBPROTOCOL = "realtime"
KEY_SUBPROTOCOL = "openai-insecure-api-key."
MAX_EVENT_BYTES = 32 * 1024 * 1024
# Audio: 24 kHz 16-bit mono PCM; a simulated audio token is 100 ms of it.
AUDIO_BYTES_PER_TOKEN = 4800
# Output audio: this many audio tokens per transcript token.
AUDIO_TOKENS_PER_TOKEN = 2
DEFAULT_SILENCE_MS = 500
SESSION_SECONDS = 3600


@dataclass
class RealtimeTranscript:
    """One session as the simulator saw it: every message each way, exactly."""

    path_qs: str
    headers: CIMultiDictProxy[str]
    protocol: str | None
    model: str
    sent: list[bytes] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    # The code of the Close frame that ended it (aiohttp's 1006 when the connection dropped).
    close_code: int | None = None
    # time.monotonic() when the simulator noticed the end.
    ended: float | None = None

    def sent_events(self) -> list[dict[str, Any]]:
        """The sent messages, decoded."""
        return [orjson.loads(message) for message in self.sent]


class RealtimeLog:
    """The last sessions (bounded), and ids unique across them."""

    def __init__(self, history: int) -> None:
        self.sessions: deque[RealtimeTranscript] = deque(maxlen=history)
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    async def wait_ended(self, transcript: RealtimeTranscript, timeout: float = 5.0) -> float:
        """When (monotonic) `transcript`'s session ended; TimeoutError if it does not."""
        async with asyncio.timeout(timeout):
            while transcript.ended is None:
                await asyncio.sleep(0.005)
        return transcript.ended


class RealtimeServing(Protocol):
    """What the endpoint needs from the Simulator."""

    @property
    def realtime(self) -> RealtimeLog: ...

    @property
    def faults(self) -> FaultQueue: ...

    def remember(self, request: web.Request, body: bytes) -> None: ...

    def profile_for(self, model: str) -> ModelProfile: ...

    def deployment(self, name: str) -> str | None: ...


def _credentials(request: web.Request) -> bool:
    if "Authorization" in request.headers or "api-key" in request.headers:
        return True
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    return any(item.strip().startswith(KEY_SUBPROTOCOL) for item in offered.split(","))


async def realtime(sim: RealtimeServing, request: web.Request, *, azure: bool = False) -> Any:
    """One Realtime session: refused like the API refuses it, or served until it closes."""
    sim.remember(request, b"")
    provider = "azure" if azure else "openai"
    if not _credentials(request):
        return error_response(provider, 401)
    query = request.query
    name = query.get("model") or (query.get("deployment") if azure else None)
    if not name:
        return error_response(provider, 400, "Missing required parameter: 'model'.")
    if azure and request.path == "/openai/realtime" and not query.get("api-version"):
        return web.json_response(
            {"error": {"code": "404", "message": "Resource not found"}}, status=404
        )
    model = sim.deployment(name) if azure else name
    if model is None:
        return error_response(provider, 404)
    controls = Controls.from_headers(request.headers)
    fault = sim.faults.take(model)
    if fault is not None:
        controls.apply(fault)
    if controls.status is not None:
        return error_response(provider, controls.status, retry_after=controls.retry_after)
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,), max_msg_size=MAX_EVENT_BYTES, compress=False
    )
    await ws.prepare(request)
    transcript = RealtimeTranscript(request.path_qs, request.headers, ws.ws_protocol, model)
    sim.realtime.sessions.append(transcript)
    session = _Session(sim, request, ws, transcript, sim.profile_for(model), controls)
    try:
        await session.run()
    finally:
        session.stop()
        transcript.close_code = ws.close_code
        transcript.ended = time.monotonic()
    return ws


class _Session:
    """The state of one session: its configuration, conversation and running response."""

    def __init__(
        self,
        sim: RealtimeServing,
        request: web.Request,
        ws: web.WebSocketResponse,
        transcript: RealtimeTranscript,
        profile: ModelProfile,
        controls: Controls,
    ) -> None:
        self.sim = sim
        self.request = request
        self.ws = ws
        self.transcript = transcript
        self.profile = profile
        self.controls = controls
        number = sim.realtime.next_id()
        self.tag = f"{number:06d}"
        self._counter = itertools.count(1)
        self._send_lock = asyncio.Lock()
        self.config: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": f"sess_{self.tag}",
            "model": profile.reported_model,
            "output_modalities": ["audio"],
            "instructions": "You are a helpful assistant.",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "prompt": None,
            "expires_at": int(time.time()) + SESSION_SECONDS,
            "include": None,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": DEFAULT_SILENCE_MS,
                        "idle_timeout_ms": None,
                        "create_response": True,
                        "interrupt_response": True,
                    },
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "voice": "alloy",
                    "speed": 1.0,
                },
            },
        }
        # The conversation: (item id, role, text tokens, audio tokens) in order.
        self.items: list[tuple[str, str, int, int]] = []
        # Tokens of the conversation an earlier response already read (the prompt cache).
        self.seen_text = 0
        self.seen_audio = 0
        self.audio_buffer = 0  # bytes of appended, uncommitted audio
        self.speaking = False
        self._vad: asyncio.TimerHandle | None = None
        self._response: asyncio.Task[None] | None = None
        self._cancel = False
        self._drop_after = controls.drop_after_chunks
        self._responses = 0

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_{self.tag}{next(self._counter):04d}"

    async def send(self, event: dict[str, Any]) -> None:
        body = orjson.dumps({"type": event.pop("type"), "event_id": self.next_id("event"), **event})
        async with self._send_lock:
            if self.ws.closed:
                return
            self.transcript.sent.append(body)
            await self.ws.send_str(body.decode())

    async def error(
        self,
        message: str,
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        error = {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        }
        await self.send({"type": "error", "error": error})

    async def run(self) -> None:
        await self.send({"type": "session.created", "session": dict(self.config)})
        async for message in self.ws:
            if message.type == WSMsgType.TEXT:
                raw = message.data.encode()
                self.transcript.received.append(raw)
                await self.handle(raw)
            elif message.type == WSMsgType.BINARY:
                self.transcript.received.append(bytes(message.data))
                await self.error("Binary messages are not supported.", "invalid_value")
            else:
                break

    def stop(self) -> None:
        if self._vad is not None:
            self._vad.cancel()
        if self._response is not None:
            self._response.cancel()

    async def handle(self, raw: bytes) -> None:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await self.error("We could not parse the JSON body of your request.", "invalid_json")
            return
        if not isinstance(event, dict):
            await self.error("The event must be a JSON object.", "invalid_value")
            return
        kind = event.get("type")
        event_id = event.get("event_id")
        handler = self._handlers().get(kind if isinstance(kind, str) else "")
        if handler is None:
            await self.error(f"Invalid value: '{kind}'.", "invalid_value", "type", event_id)
            return
        await handler(event)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "session.update": self.session_update,
            "conversation.item.create": self.item_create,
            "conversation.item.delete": self.item_delete,
            "input_audio_buffer.append": self.audio_append,
            "input_audio_buffer.commit": self.audio_commit,
            "input_audio_buffer.clear": self.audio_clear,
            "response.create": self.response_create,
            "response.cancel": self.response_cancel,
        }

    # Client events.

    async def session_update(self, event: dict[str, Any]) -> None:
        update = event.get("session")
        if not isinstance(update, dict) or update.get("type") != "realtime":
            await self.error(
                "Missing required parameter: 'session.type'.",
                "missing_required_parameter",
                "session.type",
                event.get("event_id"),
            )
            return
        for key, value in update.items():
            current = self.config.get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                merged = dict(current)
                for inner, inner_value in value.items():
                    old = merged.get(inner)
                    if isinstance(old, dict) and isinstance(inner_value, dict):
                        merged[inner] = {**old, **inner_value}
                    else:
                        merged[inner] = inner_value
                self.config[key] = merged
            else:
                self.config[key] = value
        await self.send({"type": "session.updated", "session": dict(self.config)})

    async def item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            await self.error("Missing required parameter: 'item'.", "missing_required_parameter")
            return
        text = 0
        audio = 0
        for part in item.get("content") or ():
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    text += count_tokens(part["text"])
                if isinstance(part.get("audio"), str):
                    audio += _audio_tokens(len(part["audio"]) * 3 // 4)
        if item.get("type") == "function_call_output":
            text += count_tokens(str(item.get("output", "")))
        await self.add_item(dict(item), str(item.get("role", "user")), text, audio)

    async def add_item(self, item: dict[str, Any], role: str, text: int, audio: int) -> str:
        item_id = item.get("id") or self.next_id("item")
        item.update(id=item_id, object="realtime.item", status="completed")
        previous = self.items[-1][0] if self.items else None
        self.items.append((item_id, role, text, audio))
        await self.send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        await self.send(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
        )
        return str(item_id)

    async def item_delete(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        self.items = [item for item in self.items if item[0] != item_id]
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def audio_append(self, event: dict[str, Any]) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            await self.error("Missing required parameter: 'audio'.", "missing_required_parameter")
            return
        self.audio_buffer += len(audio) * 3 // 4
        detection = self._turn_detection()
        if detection is None:
            return
        if not self.speaking:
            self.speaking = True
            await self.send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": 0,
                    "item_id": self.next_id("item"),
                }
            )
        if self._vad is not None:
            self._vad.cancel()
        silence = detection.get("silence_duration_ms") or DEFAULT_SILENCE_MS
        loop = asyncio.get_running_loop()
        self._vad = loop.call_later(silence / 1000, lambda: loop.create_task(self.speech_end()))

    async def speech_end(self) -> None:
        self._vad = None
        self.speaking = False
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": self.audio_buffer * 1000 // 48000,
                "item_id": self.next_id("item"),
            }
        )
        await self.audio_commit({})
        detection = self._turn_detection()
        if detection is not None and detection.get("create_response", True):
            await self.response_create({})

    async def audio_commit(self, event: dict[str, Any]) -> None:
        if not self.audio_buffer:
            await self.error(
                "Error committing input audio buffer: buffer too small.",
                "input_audio_buffer_commit_empty",
            )
            return
        audio = _audio_tokens(self.audio_buffer)
        self.audio_buffer = 0
        previous = self.items[-1][0] if self.items else None
        item_id = self.next_id("item")
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": item_id,
            }
        )
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.add_item(item, "user", 0, audio)

    async def audio_clear(self, event: dict[str, Any]) -> None:
        self.audio_buffer = 0
        await self.send({"type": "input_audio_buffer.cleared"})

    async def response_create(self, event: dict[str, Any]) -> None:
        if self._response is not None and not self._response.done():
            await self.error(
                "Conversation already has an active response in progress.",
                "conversation_already_has_active_response",
                event_id=event.get("event_id"),
            )
            return
        params = event.get("response")
        self._cancel = False
        self._response = asyncio.get_running_loop().create_task(
            self.respond(params if isinstance(params, dict) else {})
        )

    async def response_cancel(self, event: dict[str, Any]) -> None:
        if self._response is None or self._response.done():
            await self.error(
                "Cancellation failed: no active response found.", "response_cancel_not_active"
            )
            return
        self._cancel = True

    def _turn_detection(self) -> dict[str, Any] | None:
        detection = self.config.get("audio", {}).get("input", {}).get("turn_detection")
        return detection if isinstance(detection, dict) else None

    # A response.

    async def respond(self, params: dict[str, Any]) -> None:
        profile, controls = self.profile, self.controls
        self._responses += 1
        response_id = self.next_id("resp")
        item_id = self.next_id("item")
        modalities = params.get("output_modalities") or self.config.get("output_modalities")
        audio = isinstance(modalities, list) and "audio" in modalities
        in_conversation = params.get("conversation", "auto") != "none"
        input_text = sum(item[2] for item in self.items)
        input_audio = sum(item[3] for item in self.items)
        cached_text = int(min(self.seen_text, input_text) * profile.cache_read_share)
        cached_audio = int(min(self.seen_audio, input_audio) * profile.cache_read_share)
        self.seen_text, self.seen_audio = input_text, input_audio
        limit = params.get("max_output_tokens", self.config.get("max_output_tokens"))
        count = controls.chunks if controls.chunks is not None else profile.output_tokens
        if isinstance(limit, int):
            count = min(count, limit)
        seed = seed_of(self.tag.encode(), response_id.encode())
        tokens = generate_tokens(seed, count)
        response: dict[str, Any] = {
            "object": "realtime.response",
            "id": response_id,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": f"conv_{self.tag}" if in_conversation else None,
            "output_modalities": ["audio"] if audio else ["text"],
            "max_output_tokens": limit if limit is not None else "inf",
            "audio": {"output": self.config["audio"]["output"]},
            "usage": None,
            "metadata": params.get("metadata"),
        }
        part_type = "audio" if audio else "text"
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        ids = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        content = {**ids, "content_index": 0}
        sent_tokens: list[str] = []
        status, details = "completed", None
        fault = self.sim.faults.take(self.transcript.model) if self._responses > 1 else None
        drop_after = self._drop_after if self._responses == 1 else None
        if fault is not None and fault.drop_after_chunks is not None:
            drop_after = fault.drop_after_chunks
        ttft = controls.ttft_s if controls.ttft_s is not None else profile.ttft_s
        interval = (
            controls.chunk_interval_s
            if controls.chunk_interval_s is not None
            else profile.chunk_interval_s
        )
        await asyncio.sleep(ttft)
        await self.send({"type": "response.created", "response": dict(response)})
        await self.send({"type": "response.output_item.added", **ids, "item": dict(item)})
        if in_conversation:
            previous = self.items[-1][0] if self.items else None
            await self.send(
                {
                    "type": "conversation.item.added",
                    "previous_item_id": previous,
                    "item": dict(item),
                }
            )
        empty = {"type": part_type, "transcript": ""} if audio else {"type": "text", "text": ""}
        await self.send({"type": "response.content_part.added", **content, "part": empty})
        if fault is not None and fault.status is not None:
            status = "failed"
            details = {
                "type": "failed",
                "error": {"type": "server_error", "code": str(fault.status)},
            }
        step = max(1, profile.tokens_per_chunk)
        for start in range(0, len(tokens) if status == "completed" else 0, step):
            if self._cancel:
                status, details = "cancelled", {"type": "cancelled", "reason": "client_cancelled"}
                break
            if start:
                await asyncio.sleep(interval)
            delta = "".join(tokens[start : start + step])
            sent_tokens.extend(tokens[start : start + step])
            if audio:
                pcm = bytes(AUDIO_BYTES_PER_TOKEN * AUDIO_TOKENS_PER_TOKEN * len(delta.split()))
                await self.send(
                    {
                        "type": "response.output_audio.delta",
                        **content,
                        "delta": base64.b64encode(pcm).decode(),
                    }
                )
                await self.send(
                    {"type": "response.output_audio_transcript.delta", **content, "delta": delta}
                )
            else:
                await self.send({"type": "response.output_text.delta", **content, "delta": delta})
            if drop_after is not None and start // step + 1 >= drop_after:
                transport = self.request.transport
                if transport is not None:
                    transport.abort()
                return
        text = "".join(sent_tokens)
        if audio:
            await self.send({"type": "response.output_audio.done", **content})
            await self.send(
                {"type": "response.output_audio_transcript.done", **content, "transcript": text}
            )
            part = {"type": "audio", "transcript": text}
        else:
            await self.send({"type": "response.output_text.done", **content, "text": text})
            part = {"type": "text", "text": text}
        await self.send({"type": "response.content_part.done", **content, "part": part})
        item.update(
            status="incomplete" if status != "completed" else "completed",
            content=[
                {
                    "type": "output_audio" if audio else "output_text",
                    ("transcript" if audio else "text"): text,
                }
            ],
        )
        await self.send({"type": "response.output_item.done", **ids, "item": dict(item)})
        output_text = len(sent_tokens)
        output_audio = len(sent_tokens) * AUDIO_TOKENS_PER_TOKEN if audio else 0
        if in_conversation:
            await self.send({"type": "conversation.item.done", "item": dict(item)})
            self.items.append((item_id, "assistant", output_text, output_audio))
        usage = {
            "total_tokens": input_text + input_audio + output_text + output_audio,
            "input_tokens": input_text + input_audio,
            "output_tokens": output_text + output_audio,
            "input_token_details": {
                "text_tokens": input_text,
                "audio_tokens": input_audio,
                "image_tokens": 0,
                "cached_tokens": cached_text + cached_audio,
                "cached_tokens_details": {
                    "text_tokens": cached_text,
                    "audio_tokens": cached_audio,
                    "image_tokens": 0,
                },
            },
            "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
        }
        response.update(status=status, status_details=details, output=[item], usage=usage)
        await self.send({"type": "response.done", "response": response})
        await self.send(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                    {"name": "tokens", "limit": 400000, "remaining": 399000, "reset_seconds": 0.15},
                ],
            }
        )


def _audio_tokens(pcm_bytes: int) -> int:
    return max(1, -(-pcm_bytes // AUDIO_BYTES_PER_TOKEN)) if pcm_bytes else 0


def add_realtime_routes(app: web.Application, sim: RealtimeServing) -> None:
    """`GET` on OpenAI's and Azure OpenAI's Realtime paths."""

    async def openai(request: web.Request) -> Any:
        return await realtime(sim, request)

    async def azure(request: web.Request) -> Any:
        return await realtime(sim, request, azure=True)

    app.router.add_get("/v1/realtime", openai)
    app.router.add_get("/openai/realtime", azure)
    app.router.add_get("/openai/v1/realtime", azure)
