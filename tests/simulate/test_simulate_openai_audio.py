"""OpenAI audio transcriptions: multipart uploads through the openai SDK and on the wire."""

from __future__ import annotations

import math
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from sidecar.protocols.sse import SSEDecoder
from sidecar.simulate.openai_audio import COMPRESSED_BYTES_PER_SECOND, audio_tokens
from sidecar.simulate.profiles import default_profiles
from sidecar.simulate.simulator import RunningSimulator
from sidecar.simulate.text import count_tokens
from tests.simulate.audio_files import silent_wav

PROFILES = default_profiles()
AUDIO = silent_wav(2.5)
PROMPT = "Terms: sidecar, Prometheus, OpenTelemetry."


def upload(data: bytes = AUDIO) -> tuple[str, bytes, str]:
    return ("meeting.wav", data, "audio/wav")


async def test_whisper_reports_the_audio_duration(
    openai_client: Any, sim: RunningSimulator
) -> None:
    reply = await openai_client.audio.transcriptions.create(model="whisper-1", file=upload())
    received = sim.simulator.received[-1]
    assert received.path_qs == "/v1/audio/transcriptions"
    assert received.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert AUDIO in received.body
    assert len(reply.text.split()) == PROFILES["whisper-1"].output_tokens
    assert reply.usage.type == "duration"
    assert reply.usage.seconds == math.ceil(2.5) == 3
    again = await openai_client.audio.transcriptions.create(model="whisper-1", file=upload())
    assert again.text == reply.text  # the same audio, the same transcript
    other = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=upload(silent_wav(1.0))
    )
    assert other.text != reply.text


async def test_token_billed_model_reports_token_usage(openai_client: Any) -> None:
    reply = await openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=upload(), prompt=PROMPT
    )
    usage = reply.usage
    assert usage.type == "tokens"
    assert usage.input_token_details.audio_tokens == audio_tokens(2.5) == 25
    assert usage.input_token_details.text_tokens == count_tokens(PROMPT)
    assert usage.input_tokens == 25 + count_tokens(PROMPT)
    assert usage.output_tokens == PROFILES["gpt-4o-transcribe"].output_tokens == 24
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert len(reply.text.split()) == 24


async def test_streamed_transcript(openai_client: Any, sim: RunningSimulator) -> None:
    whole = await openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=upload(), include=["logprobs"]
    )
    stream = await openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=upload(), stream=True, include=["logprobs"]
    )
    events = [event async for event in stream]
    assert [event.type for event in events[:-1]] == ["transcript.text.delta"] * 24
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert "".join(event.delta for event in events[:-1]) == done.text == whole.text
    assert done.usage.output_tokens == 24
    assert done.usage.input_tokens == audio_tokens(2.5)
    assert [entry.token for entry in done.logprobs] == [entry.token for entry in whole.logprobs]
    assert all(entry.logprob < 0 for entry in whole.logprobs)


async def test_response_formats(openai_client: Any) -> None:
    text = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=upload(), response_format="text"
    )
    whole = await openai_client.audio.transcriptions.create(model="whisper-1", file=upload())
    assert text == whole.text + "\n"
    verbose = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=upload(), response_format="verbose_json"
    )
    assert verbose.duration == 2.5
    assert verbose.text == whole.text
    assert verbose.segments[0].end == 2.5
    srt = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=upload(), response_format="srt"
    )
    assert srt.startswith("1\n00:00:00,000 --> 00:00:02,500\n")
    with pytest.raises(openai.BadRequestError) as caught:
        await openai_client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=upload(), response_format="verbose_json"
        )
    assert "not compatible" in caught.value.message


async def test_multipart_on_the_wire(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    target = sim.openai_base_url + "/audio/transcriptions"
    # Not a WAV file: its length is estimated from its size.
    compressed = bytes(range(256)) * (3 * COMPRESSED_BYTES_PER_SECOND // 256)
    form = aiohttp.FormData()
    form.add_field("model", "gpt-4o-transcribe")
    form.add_field("file", compressed, filename="clip.mp3", content_type="audio/mpeg")
    async with http.post(target, data=form) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        reply = orjson.loads(await response.read())
    assert reply["usage"]["input_token_details"]["audio_tokens"] == audio_tokens(
        len(compressed) / COMPRESSED_BYTES_PER_SECOND
    )
    stream_form = aiohttp.FormData()
    stream_form.add_field("model", "gpt-4o-transcribe")
    stream_form.add_field("stream", "true")
    stream_form.add_field("file", AUDIO, filename="a.wav", content_type="audio/wav")
    async with http.post(target, data=stream_form) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = list(SSEDecoder().feed(await response.read()))
    assert all(name is None for name, _ in events)
    assert orjson.loads(events[-1][1])["type"] == "transcript.text.done"

    no_file = aiohttp.FormData(default_to_multipart=True)
    no_file.add_field("model", "whisper-1")
    no_file.add_field("language", "en")
    async with http.post(target, data=no_file) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == "Missing required parameter: 'file'."
    async with http.post(target, json={"model": "whisper-1"}) as response:
        assert response.status == 400
        assert "multipart/form-data" in (await response.json())["error"]["message"]


async def test_faults_apply_to_transcriptions(openai_client: Any, sim: RunningSimulator) -> None:
    sim.simulator.fail_next(1, 429, retry_after="0", model="whisper-1")
    with pytest.raises(openai.RateLimitError):
        await openai_client.audio.transcriptions.create(model="whisper-1", file=upload())
    reply = await openai_client.audio.transcriptions.create(model="whisper-1", file=upload())
    assert reply.usage.seconds == 3
