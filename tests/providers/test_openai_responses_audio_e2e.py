"""The openai client on the Responses API (told apart from Chat Completions) and on audio
transcription (multipart: the model comes from the form), through a real sidecar."""

from __future__ import annotations

from typing import Any

from sidecar.simulate.openai_audio import audio_tokens
from sidecar.simulate.profiles import default_profiles
from sidecar.simulate.text import count_tokens
from tests.helpers.providers import MESSAGES, PROMPT, Clients, Rig, check_call
from tests.helpers.simulator import RunningSimulator
from tests.simulate.audio_files import silent_wav

PROFILES = default_profiles()


async def test_responses_and_chat_completions_are_told_apart(
    rig: Rig, clients: Clients, simulator: RunningSimulator
) -> None:
    direct = clients.openai(simulator.url + "/v1")
    proxied = clients.openai(rig.url + "/v1")
    expected = await direct.responses.with_raw_response.create(model="o3-mini", input=PROMPT)
    got = await proxied.responses.with_raw_response.create(model="o3-mini", input=PROMPT)
    assert got.http_response.content == expected.http_response.content
    stream = await proxied.responses.create(model="o3-mini", input=PROMPT, stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    await proxied.chat.completions.create(model="o3-mini", messages=MESSAGES)

    answer = expected.parse()
    whole, streamed, completion = await rig.records_after(3)
    usage = answer.usage
    common: dict[str, Any] = {
        "provider": "openai",
        "operation": "chat",
        "model": "o3-mini",
        "response_model": "o3-mini-2025-01-31",
        "tokens": (usage.input_tokens, usage.output_tokens),
        "price": ("openai", "o3-mini-2025-01-31"),
        "api_type": "responses",
    }
    await check_call(rig, whole, **common)
    await check_call(rig, streamed, first_chunk_after=PROFILES["o3-mini"].ttft_s, **common)
    for record in (whole, streamed):
        assert record.reasoning_tokens == usage.output_tokens_details.reasoning_tokens > 0
        assert record.cache_read_tokens == usage.input_tokens_details.cached_tokens
        assert not record.stream_usage_injected  # the Responses API always reports usage
    assert completion.request.api_type == "chat_completions"
    span = await rig.span_of(completion)
    assert span.attributes["openai.api.type"] == "chat_completions"
    await rig.assert_no_credentials()


async def test_audio_transcription_gets_its_model_from_the_form(
    rig: Rig, clients: Clients, simulator: RunningSimulator
) -> None:
    client = clients.openai(rig.url + "/v1")
    prompt = "Names: Kubernetes, Prometheus."
    audio = ("note.wav", silent_wav(2.0), "audio/wav")
    heard = await client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=audio, prompt=prompt
    )
    sent = simulator.sim.received[-1]
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert silent_wav(2.0) in sent.body  # forwarded as it was
    whisper = await client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert whisper.text

    tokens, duration = await rig.records_after(2)
    assert heard.usage.input_tokens == audio_tokens(2.0) + count_tokens(prompt)
    await check_call(
        rig,
        tokens,
        provider="openai",
        operation="other",
        model="gpt-4o-transcribe",
        response_model=None,
        tokens=(heard.usage.input_tokens, heard.usage.output_tokens),
        price=("openai", "gpt-4o-transcribe"),
    )
    # Audio input tokens are priced as audio (genai-prices: $6 vs $2.50 per million text).
    assert tokens.input_audio_tokens == audio_tokens(2.0)
    # whisper-1 reports seconds, not tokens: labelled by its form model, usage unknown.
    assert (duration.request.request_model, duration.input_tokens) == ("whisper-1", None)
    labels = {"gen_ai_operation_name": "other", "gen_ai_request_model": "gpt-4o-transcribe"}
    assert await rig.series("model_sidecar_requests_total", **labels) == 1
    await rig.assert_no_credentials()
