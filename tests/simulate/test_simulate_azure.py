"""Azure OpenAI as the official openai SDK's AzureOpenAI client and the v1 API see it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from sidecar.protocols.sse import SSEDecoder
from sidecar.simulate.azure_wire import CHOICE_FILTERS, PROMPT_FILTERS
from sidecar.simulate.openai_audio import audio_tokens
from sidecar.simulate.profiles import default_profiles
from sidecar.simulate.simulator import RunningSimulator
from sidecar.simulate.text import count_tokens
from tests.simulate.audio_files import silent_wav

PROMPT = "Explain the sidecar pattern in two sentences, please. " * 8
MESSAGES = [{"role": "user", "content": PROMPT}]
PROFILES = default_profiles()
API_VERSION = "2024-10-21"
KEY = "azure-test-key"


@pytest.fixture
async def azure(sim: RunningSimulator) -> AsyncIterator[Any]:
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=sim.base_url, api_key=KEY, api_version=API_VERSION, max_retries=0
    )
    yield client
    await client.close()


@pytest.fixture
async def azure_v1(sim: RunningSimulator) -> AsyncIterator[Any]:
    client = openai.AsyncOpenAI(base_url=sim.base_url + "/openai/v1/", api_key=KEY, max_retries=0)
    yield client
    await client.close()


def deployment_url(sim: RunningSimulator, deployment: str, operation: str) -> str:
    return f"{sim.base_url}/openai/deployments/{deployment}/{operation}?api-version={API_VERSION}"


async def test_chat_names_the_dated_model_and_carries_filter_results(
    azure: Any, sim: RunningSimulator
) -> None:
    raw = await azure.chat.completions.with_raw_response.create(
        model="prod-gpt4o", messages=MESSAGES
    )
    reply = raw.parse()
    assert reply.model == "gpt-4o-2024-08-06"
    assert reply.usage.prompt_tokens == count_tokens(PROMPT)
    assert reply.usage.completion_tokens == PROFILES["gpt-4o"].output_tokens == 32
    assert reply.model_extra["prompt_filter_results"] == PROMPT_FILTERS
    assert reply.choices[0].model_extra["content_filter_results"] == CHOICE_FILTERS
    assert len(reply.choices[0].message.content.split()) == 32
    assert raw.headers["apim-request-id"] == raw.headers["x-request-id"]
    assert raw.headers["x-ms-region"]
    body = orjson.loads(raw.content)
    assert "service_tier" not in body  # Azure does not name a service tier
    assert list(body) == sorted(body)  # and sorts its keys
    received = sim.simulator.received[-1]
    expected = f"/openai/deployments/prod-gpt4o/chat/completions?api-version={API_VERSION}"
    assert received.path_qs == expected
    assert received.headers["api-key"] == KEY


async def test_stream_opens_with_prompt_filters_and_ends_with_usage(azure: Any) -> None:
    stream = await azure.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    first = chunks[0]
    assert first.choices == []
    assert first.model == ""
    assert first.id == ""
    assert first.model_extra["prompt_filter_results"] == PROMPT_FILTERS
    assert chunks[1].choices[0].delta.role == "assistant"
    assert chunks[1].choices[0].model_extra["content_filter_results"] == {}
    assert chunks[2].choices[0].model_extra["content_filter_results"] == CHOICE_FILTERS
    assert chunks[2].model == "gpt-4o-mini-2024-07-18"
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.prompt_tokens == count_tokens(PROMPT)
    assert last.usage.completion_tokens == PROFILES["gpt-4o-mini"].output_tokens
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = await azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert text == whole.choices[0].message.content


async def test_stream_wire_bytes(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    body = {"messages": MESSAGES, "stream": True}
    url = deployment_url(sim, "gpt-4o-mini", "chat/completions")
    async with http.post(url, json=body, headers={"api-key": KEY}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = await response.read()
    events = [data for _, data in SSEDecoder().feed(raw)]
    assert events[0] == orjson.dumps(
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": PROMPT_FILTERS,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    assert events[-1] == b"[DONE]"
    decoded = [orjson.loads(data) for data in events[1:-1]]
    # Without include_usage: no usage anywhere, the last chunk carries the finish reason.
    assert all("usage" not in chunk for chunk in decoded)
    assert decoded[-1]["choices"][0]["finish_reason"] == "stop"


async def test_embeddings_and_legacy_completions(azure: Any) -> None:
    reply = await azure.embeddings.create(model="embeddings", input=["first text", "second"])
    assert reply.model == "text-embedding-3-small"
    assert [len(item.embedding) for item in reply.data] == [1536, 1536]
    assert reply.usage.prompt_tokens == count_tokens("first text") + count_tokens("second")
    completion = await azure.completions.create(model="gpt-35-instruct", prompt=PROMPT)
    assert completion.model == "gpt-3.5-turbo-instruct"
    assert completion.usage.prompt_tokens == count_tokens(PROMPT)
    assert completion.model_extra["prompt_filter_results"] == PROMPT_FILTERS
    assert completion.choices[0].model_extra["content_filter_results"] == CHOICE_FILTERS


async def test_audio_transcription_on_a_deployment(azure: Any, sim: RunningSimulator) -> None:
    audio = silent_wav(2.0)
    prompt = "Names: Kubernetes, Prometheus."
    reply = await azure.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("note.wav", audio, "audio/wav"), prompt=prompt
    )
    assert len(reply.text.split()) == PROFILES["gpt-4o-transcribe"].output_tokens
    usage = reply.usage
    assert usage.type == "tokens"
    assert usage.input_token_details.audio_tokens == audio_tokens(2.0) == 20
    assert usage.input_token_details.text_tokens == count_tokens(prompt)
    assert usage.input_tokens == 20 + count_tokens(prompt)
    assert usage.output_tokens == 24
    assert usage.total_tokens == usage.input_tokens + 24
    received = sim.simulator.received[-1]
    assert received.path_qs.startswith("/openai/deployments/gpt-4o-transcribe/audio/transcriptions")
    assert received.headers["Content-Type"].startswith("multipart/form-data")


async def test_v1_api_chat_and_responses(azure_v1: Any, sim: RunningSimulator) -> None:
    chat = await azure_v1.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert chat.model == "gpt-4o-mini-2024-07-18"
    assert chat.usage.prompt_tokens == count_tokens(PROMPT)
    assert chat.model_extra["prompt_filter_results"] == PROMPT_FILTERS
    received = sim.simulator.received[-1]
    assert received.path_qs == "/openai/v1/chat/completions"
    assert received.headers["Authorization"] == f"Bearer {KEY}"
    reply = await azure_v1.responses.create(model="o3-mini", input=PROMPT)
    assert reply.model == "o3-mini-2025-01-31"
    assert reply.usage.input_tokens == count_tokens(PROMPT)
    assert reply.usage.output_tokens_details.reasoning_tokens == 64
    assert sim.simulator.received[-1].path_qs == "/openai/v1/responses"
    embedded = await azure_v1.embeddings.create(model="embeddings", input="x", dimensions=8)
    assert len(embedded.data[0].embedding) == 8


async def test_unknown_deployment_is_deployment_not_found(azure: Any, azure_v1: Any) -> None:
    for client in (azure, azure_v1):
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="no-such-deployment", messages=MESSAGES)
        error: Any = caught.value
        assert error.body["code"] == "DeploymentNotFound"
        assert set(error.body) == {"code", "message"}


async def test_missing_credentials_and_api_version(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    body = {"messages": MESSAGES}
    url = deployment_url(sim, "gpt-4o-mini", "chat/completions")
    async with http.post(url, json=body) as response:
        assert response.status == 401
        error = (await response.json())["error"]
    assert error["code"] == "401"
    assert error["message"].startswith("Access denied")
    v1 = sim.base_url + "/openai/v1/chat/completions"
    async with http.post(v1, json={"model": "gpt-4o-mini", **body}) as response:
        assert response.status == 401
    # A bearer token is as good as an api-key.
    bearer = {"Authorization": "Bearer aad-token"}
    async with http.post(url, json=body, headers=bearer) as response:
        assert response.status == 200
    no_version = f"{sim.base_url}/openai/deployments/gpt-4o-mini/chat/completions"
    async with http.post(no_version, json=body, headers={"api-key": KEY}) as response:
        assert response.status == 404
        assert await response.json() == {"error": {"code": "404", "message": "Resource not found"}}


async def test_faults_apply_to_the_deployed_model(azure: Any, sim: RunningSimulator) -> None:
    sim.simulator.fail_next(1, 429, retry_after="3", model="gpt-4o-mini")
    with pytest.raises(openai.RateLimitError) as caught:
        await azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    error: Any = caught.value
    assert error.body["code"] == "429"
    assert error.response.headers["retry-after"] == "3"
    # Errors of the model behind the gateway keep OpenAI's shape.
    with pytest.raises(openai.InternalServerError) as server_error:
        await azure.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-sim-status": "500"}
        )
    assert server_error.value.body["type"] == "server_error"  # type: ignore[index]
    stream = await azure.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-sim-drop-after-chunks": "2"},
    )
    texts: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                texts.append(chunk.choices[0].delta.content)
    assert len(texts) == 2


async def test_responses_and_transcriptions_outside_deployment_paths(
    azure: Any, azure_v1: Any, sim: RunningSimulator
) -> None:
    # AzureOpenAI calls the Responses API at /openai/responses, naming the deployment in `model`.
    reply = await azure.responses.create(model="gpt-4o-mini", input=PROMPT)
    assert sim.simulator.received[-1].path_qs == f"/openai/responses?api-version={API_VERSION}"
    assert reply.model == "gpt-4o-mini-2024-07-18"
    assert reply.usage.input_tokens == count_tokens(PROMPT)
    heard = await azure_v1.audio.transcriptions.create(
        model="whisper", file=("a.wav", silent_wav(1.2), "audio/wav")
    )
    assert sim.simulator.received[-1].path_qs == "/openai/v1/audio/transcriptions"
    assert heard.usage.type == "duration"
    assert heard.usage.seconds == 2
