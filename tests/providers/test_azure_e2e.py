"""Azure OpenAI end to end: openai.AzureOpenAI (deployment paths, `api-key`) and the plain
openai client on Azure's v1 API, through a real sidecar to the simulator."""

from __future__ import annotations

from typing import Any

from sidecar.simulate.profiles import default_profiles
from tests.helpers.providers import AZURE_API_VERSION, MESSAGES, PROMPT, Clients, Rig, check_call
from tests.helpers.sdk import API_KEY
from tests.helpers.simulator import RunningSimulator
from tests.simulate.audio_files import silent_wav

PROFILES = default_profiles()
AZURE = "azure.ai.openai"


async def stream_bytes(client: Any, **kwargs: Any) -> bytes:
    async with client.chat.completions.with_streaming_response.create(
        stream=True, **kwargs
    ) as response:
        return b"".join([chunk async for chunk in response.iter_bytes()])


async def test_deployment_chat_whole_and_streamed(
    rig: Rig, clients: Clients, simulator: RunningSimulator
) -> None:
    direct, proxied = clients.azure(simulator.url), clients.azure(rig.url)
    kwargs: dict[str, Any] = {"model": "prod-mini", "messages": MESSAGES}
    expected = await direct.chat.completions.with_raw_response.create(**kwargs)
    got = await proxied.chat.completions.with_raw_response.create(**kwargs)
    assert got.http_response.content == expected.http_response.content
    sent = simulator.sim.received[-1]
    assert sent.path_qs == (
        f"/openai/deployments/prod-mini/chat/completions?api-version={AZURE_API_VERSION}"
    )
    assert sent.headers["api-key"] == API_KEY

    # The stream, byte for byte: the prompt filter chunk (empty choices) reaches the app, the
    # usage chunk the sidecar asked for does not.
    direct_stream = await stream_bytes(direct, **kwargs)
    proxied_stream = await stream_bytes(proxied, **kwargs)
    assert proxied_stream == direct_stream
    assert proxied_stream.startswith(b'data: {"choices":[],"created":0,"id":"","model":""')
    assert b'"usage"' not in proxied_stream
    assert b'"include_usage":true' in simulator.sim.received[-1].body

    reply = expected.parse()
    whole, streamed = await rig.records_after(2)
    tokens = (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    common: dict[str, Any] = {
        "provider": AZURE,
        "operation": "chat",
        "model": "prod-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "tokens": tokens,
        "price": ("azure", "gpt-4o-mini-2024-07-18"),
        "api_type": "chat_completions",
    }
    await check_call(rig, whole, **common)
    await check_call(rig, streamed, first_chunk_after=PROFILES["gpt-4o-mini"].ttft_s, **common)
    assert streamed.stream_usage_injected and streamed.finish_reasons == ["stop"]
    requests = "model_sidecar_requests_total"
    labels = {"gen_ai_provider_name": AZURE, "gen_ai_operation_name": "chat", "upstream": "azure"}
    assert await rig.series(requests, gen_ai_request_model="prod-mini", **labels) == 2
    await rig.assert_no_credentials()


async def test_deployment_embeddings_and_the_deployments_map(rig: Rig, clients: Clients) -> None:
    azure = clients.azure(rig.url)
    embedded = await azure.embeddings.create(model="embeddings", input=["first", "second"])
    heard = await azure.audio.transcriptions.create(
        model="whisper", file=("a.wav", silent_wav(1.0), "audio/wav")
    )
    assert heard.text
    embedding, transcription = await rig.records_after(2)
    await check_call(
        rig,
        embedding,
        provider=AZURE,
        operation="embeddings",
        model="embeddings",
        response_model="text-embedding-3-small",
        tokens=(embedded.usage.prompt_tokens, None),
        price=("azure", "text-embedding-3-small"),
    )
    # The transcription's answer names no model: `deployments` maps whisper → whisper-1.
    assert transcription.request.request_model == "whisper"  # the form's model field
    assert transcription.response_model == "whisper-1"
    assert (transcription.provider_name, transcription.request.operation) == (AZURE, "other")
    await rig.assert_no_credentials()


async def test_v1_api_chat_stream_embeddings_and_responses(rig: Rig, clients: Clients) -> None:
    v1 = clients.openai(rig.url + "/openai/v1/")
    chat = await v1.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stream = await v1.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == chat.choices[0].message.content
    embedded = await v1.embeddings.create(model="embeddings", input="x")
    answer = await v1.responses.create(model="o3-mini", input=PROMPT)
    records = await rig.records_after(4)
    chat_tokens = (chat.usage.prompt_tokens, chat.usage.completion_tokens)
    for record, ttft in zip(records[:2], (None, PROFILES["gpt-4o-mini"].ttft_s), strict=True):
        await check_call(
            rig,
            record,
            provider=AZURE,
            operation="chat",
            model="gpt-4o-mini",
            response_model="gpt-4o-mini-2024-07-18",
            tokens=chat_tokens,
            price=("azure", "gpt-4o-mini-2024-07-18"),
            first_chunk_after=ttft,
            api_type="chat_completions",
        )
    await check_call(
        rig,
        records[2],
        provider=AZURE,
        operation="embeddings",
        model="embeddings",
        response_model="text-embedding-3-small",
        tokens=(embedded.usage.prompt_tokens, None),
        price=("azure", "text-embedding-3-small"),
    )
    await check_call(
        rig,
        records[3],
        provider=AZURE,
        operation="chat",
        model="o3-mini",
        response_model="o3-mini-2025-01-31",
        tokens=(answer.usage.input_tokens, answer.usage.output_tokens),
        price=("azure", "o3-mini-2025-01-31"),
        api_type="responses",
    )
    assert records[3].reasoning_tokens == answer.usage.output_tokens_details.reasoning_tokens
    await rig.assert_no_credentials()


async def test_azure_openai_responses_api(rig: Rig, clients: Clients) -> None:
    # AzureOpenAI sends Responses calls to /openai/responses?api-version=..., model = deployment.
    answer = await clients.azure(rig.url).responses.create(model="gpt-4o-mini", input=PROMPT)
    (record,) = await rig.records_after(1)
    assert record.path == "/openai/responses"
    await check_call(
        rig,
        record,
        provider=AZURE,
        operation="chat",
        model="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18",
        tokens=(answer.usage.input_tokens, answer.usage.output_tokens),
        price=("azure", "gpt-4o-mini-2024-07-18"),
        api_type="responses",
    )
