"""OpenAI's audio transcriptions: POST /v1/audio/transcriptions, a multipart/form-data upload.

Models billed by tokens (`gpt-4o-transcribe`, `gpt-4o-mini-transcribe`) report `usage` of
type `tokens` (audio and prompt text in, transcript out) and can stream; the others
(`whisper-1`) report the audio's `duration` in seconds and answer every response format.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from typing import Any

import orjson
from aiohttp import BodyPartReader, MultipartReader, StreamReader, web

from sidecar.simulate.call import Answer, Call
from sidecar.simulate.errors import error_response
from sidecar.simulate.openai_wire import EVENT_STREAM, JSON, OPENAI, Dialect, logprob_entries
from sidecar.simulate.streaming import Responder, sse
from sidecar.simulate.text import count_tokens, seed_of

# Audio input tokens per second of audio (OpenAI bills 600 a minute for audio input).
AUDIO_TOKENS_PER_SECOND = 10
# Bytes a second of audio assumed for a file that is not a WAV file (128 kbit/s).
COMPRESSED_BYTES_PER_SECOND = 16_000
TEXT = "text/plain; charset=utf-8"
# Form fields kept as lists (the SDK sends them with a `[]` suffix).
_LIST_FIELDS = ("include", "timestamp_granularities")


def audio_seconds(data: bytes) -> float:
    """The length of an audio file: exact for WAV, else estimated from its size."""
    try:
        with wave.open(io.BytesIO(data)) as audio:
            rate = audio.getframerate()
            return audio.getnframes() / rate if rate else 0.0
    except (wave.Error, EOFError, ValueError, struct.error):
        return len(data) / COMPRESSED_BYTES_PER_SECOND


def audio_tokens(seconds: float) -> int:
    """Audio input tokens of `seconds` of audio."""
    return math.ceil(seconds * AUDIO_TOKENS_PER_SECOND)


def billed_by_tokens(model: str) -> bool:
    """Whether a transcription model reports token usage (else the audio's duration)."""
    return "transcribe" in model


async def parse_form(request: web.Request, body: bytes) -> dict[str, Any]:
    """The form fields of a transcription upload; the file as its name, size, digest, length.

    ValueError (with the message to send back) when the body is not a usable form.
    """
    if not request.content_type.startswith("multipart/"):
        raise ValueError("Expected a multipart/form-data request body.")
    content = StreamReader(request.protocol, limit=len(body) + 1)
    content.feed_data(body)
    content.feed_eof()
    form: dict[str, Any] = {}
    try:
        reader = MultipartReader(request.headers, content)
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ValueError("nested multipart bodies are not accepted")
            name = part.name or ""
            data = bytes(await part.read())
            if name == "file":
                seconds = audio_seconds(data)
                form["file"] = {
                    "filename": part.filename,
                    "size": len(data),
                    "digest": seed_of(data).hex(),
                    "seconds": seconds,
                }
                continue
            value = data.decode("utf-8", errors="replace")
            key = name.removesuffix("[]")
            if key in _LIST_FIELDS:
                form.setdefault(key, []).append(value)
            else:
                form[key] = value
    except (ValueError, AssertionError) as exc:
        raise ValueError(f"Could not parse multipart form: {exc}") from exc
    if "file" not in form:
        raise ValueError("Missing required parameter: 'file'.")
    stream = str(form.get("stream", "false")).lower()
    form["stream"] = stream == "true"
    return form


def _usage(call: Call, answer: Answer, seconds: float) -> dict[str, Any]:
    if not billed_by_tokens(call.model):
        return {"type": "duration", "seconds": math.ceil(seconds)}
    audio = audio_tokens(seconds)
    text = count_tokens(str(call.payload.get("prompt") or ""))
    output = len(answer.tokens)
    return {
        "type": "tokens",
        "input_tokens": audio + text,
        "input_token_details": {"text_tokens": text, "audio_tokens": audio},
        "output_tokens": output,
        "total_tokens": audio + text + output,
    }


async def transcriptions(call: Call, dialect: Dialect = OPENAI) -> web.StreamResponse:
    """POST /v1/audio/transcriptions."""
    payload = call.payload
    upload = payload["file"]
    seconds = float(upload["seconds"])
    answer = call.answer([upload["digest"], payload.get("prompt")])
    usage = _usage(call, answer, seconds)
    response_format = payload.get("response_format") or "json"
    tokens = billed_by_tokens(call.model)
    if tokens and response_format not in ("json", "text"):
        message = (
            f"response_format '{response_format}' is not compatible with model "
            f"'{call.model}'. Use 'json' or 'text' instead."
        )
        return error_response("openai", 400, message, headers=dialect.headers(call))
    logprobs = None
    if tokens and "logprobs" in payload.get("include", []):
        logprobs = [
            {key: entry[key] for key in ("token", "logprob", "bytes")}
            for entry in logprob_entries(answer.choices(call.profile.token_confidence, 1), 0)
        ]
    responder = Responder(call, dialect.headers(call))
    chunks = len(answer.chunks(call.chunk_size))
    if tokens and payload.get("stream") is True:
        return await _stream(responder, answer, usage, logprobs)
    if response_format == "text":
        return await responder.send_body((answer.text + "\n").encode(), TEXT, chunks)
    if response_format in ("srt", "vtt"):
        body = _subtitles(response_format, answer.text, seconds)
        return await responder.send_body(body.encode(), TEXT, chunks)
    reply: dict[str, Any] = {"text": answer.text}
    if response_format == "verbose_json":
        reply = _verbose(answer, seconds)
    if logprobs is not None:
        reply["logprobs"] = logprobs
    reply["usage"] = usage
    return await responder.send_body(orjson.dumps(reply, option=orjson.OPT_INDENT_2), JSON, chunks)


async def _stream(
    responder: Responder,
    answer: Answer,
    usage: dict[str, Any],
    logprobs: list[dict[str, Any]] | None,
) -> web.StreamResponse:
    call = responder.call
    await responder.start(EVENT_STREAM)
    position = 0
    for tokens in answer.chunks(call.chunk_size):
        if not tokens:
            continue
        event: dict[str, Any] = {"type": "transcript.text.delta", "delta": "".join(tokens)}
        if logprobs is not None:
            event["logprobs"] = logprobs[position : position + len(tokens)]
        position += len(tokens)
        await responder.chunk(sse(orjson.dumps(event)))
    done: dict[str, Any] = {"type": "transcript.text.done", "text": answer.text}
    if logprobs is not None:
        done["logprobs"] = logprobs
    done["usage"] = usage
    return await responder.finish(sse(orjson.dumps(done)))


def _verbose(answer: Answer, seconds: float) -> dict[str, Any]:
    segment = {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": round(seconds, 2),
        "text": " " + answer.text,
        "tokens": [50364 + index for index in range(len(answer.tokens))],
        "temperature": 0.0,
        "avg_logprob": -0.25,
        "compression_ratio": 1.2,
        "no_speech_prob": 0.01,
    }
    return {
        "task": "transcribe",
        "language": "english",
        "duration": round(seconds, 2),
        "text": answer.text,
        "segments": [segment],
    }


def _subtitles(kind: str, text: str, seconds: float) -> str:
    def stamp(value: float, separator: str) -> str:
        millis = round(value * 1000)
        hours, rest = divmod(millis, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"

    if kind == "srt":
        return f"1\n{stamp(0, ',')} --> {stamp(seconds, ',')}\n{text}\n\n"
    return f"WEBVTT\n\n{stamp(0, '.')} --> {stamp(seconds, '.')}\n{text}\n\n"
