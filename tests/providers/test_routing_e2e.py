"""A credential never goes to another provider; misrouting is said plainly; bad paths are
forwarded unchanged and recorded as errors. Official clients, a real sidecar, the simulator."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import httpx
import ollama
import openai
import pytest

from sidecar.app import Sidecar
from tests.helpers.logs import captured_logs
from tests.helpers.providers import AZURE_API_VERSION, MESSAGES, Clients, upstreams_at
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator


async def test_calls_for_unconfigured_providers_are_refused_locally(
    sidecar: Sidecar,
    clients: Clients,
    simulator: RunningSimulator,
    records: RecordingSink,
) -> None:
    # The sidecar knows only openai, anthropic and gemini: Azure, Vertex and Ollama calls
    # (each carrying a credential) must reach no upstream at all.
    with pytest.raises(openai.BadRequestError) as azure:
        await clients.azure(sidecar.proxy_url).chat.completions.create(
            model="prod-gpt4o", messages=MESSAGES
        )
    body: Any = azure.value.body
    assert set(body) == {"code", "message"}  # Azure's own error shape
    assert "no upstream 'azure' is configured" in body["message"]
    assert "--upstream azure=https://NAME.openai.azure.com" in body["message"]
    with pytest.raises(anthropic.BadRequestError) as vertex:
        await clients.anthropic_vertex(sidecar.proxy_url).messages.create(
            model="claude-sonnet-4@20250514", max_tokens=10, messages=MESSAGES
        )
    assert vertex.value.body["error"]["status"] == "INVALID_ARGUMENT"  # type: ignore[index]
    assert "no upstream 'vertex' is configured" in str(vertex.value)
    with pytest.raises(ollama.ResponseError) as local:
        await clients.ollama(sidecar.proxy_url).chat(model="llama3.2", messages=MESSAGES)
    assert local.value.status_code == 400 and "no upstream 'ollama'" in local.value.error
    # A path no protocol claims, carrying Azure's api-key header: refused too.
    async with aiohttp.ClientSession() as http:
        async with http.get(
            sidecar.proxy_url + "/v1/models", headers={"api-key": API_KEY}
        ) as response:
            assert response.status == 400
            assert "it carries a credential of that provider" in (await response.text())
    assert list(simulator.sim.received) == []

    refused = await records.wait_for(4)
    assert [(r.upstream, r.provider_name) for r in refused] == [
        ("azure", "azure.ai.openai"),
        ("vertex", "gcp.vertex_ai"),
        ("ollama", "ollama"),
        ("azure", "azure.ai.openai"),
    ]
    assert all((r.http_status, r.outcome) == (400, "upstream_error") for r in refused)
    assert refused[0].request.request_model == "prod-gpt4o"
    assert refused[0].request.operation == "chat"


async def test_a_lost_v1_gets_the_upstreams_404_and_one_plain_hint(
    sidecar_factory: SidecarFactory, simulator: RunningSimulator, records: RecordingSink
) -> None:
    # The default upstream is an OpenAI-compatible vendor with its own provider name.
    upstreams = {"groq": {"url": simulator.url, "path_prefix": "/groq", "provider": "groq"}}
    sidecar = await sidecar_factory({"upstreams": upstreams, "default_upstream": "groq"})
    base = sidecar.proxy_url  # the app forgot the /v1
    direct = openai.AsyncOpenAI(base_url=simulator.url, api_key=API_KEY, max_retries=0)
    proxied = openai.AsyncOpenAI(base_url=base, api_key=API_KEY, max_retries=0)
    with captured_logs("sidecar") as logs:
        responses = []
        for client in (direct, proxied, proxied):
            with pytest.raises(openai.NotFoundError) as caught:
                await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            responses.append(caught.value.response)
    await direct.close()
    await proxied.close()
    assert responses[1].content == responses[0].content  # the upstream's answer, unchanged
    assert responses[1].status_code == 404
    hints = logs.containing("no known API at /chat/completions")
    assert len(hints) == 1
    assert "did the base URL lose its /v1?" in hints[0] and "'groq'" in hints[0]
    first, second = await records.wait_for(2)
    for record in (first, second):
        assert (record.provider_name, record.upstream) == ("groq", "groq")
        assert (record.request.operation, record.http_status) == ("other", 404)
        assert record.request.request_model == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("path", "provider", "model"),
    [
        ("/openai/deployments//chat/completions", "azure.ai.openai", None),
        ("/openai/deployments/prod-gpt4o", "azure.ai.openai", "prod-gpt4o"),
        (
            "/v1/projects/p/locations/l/publishers/google/models/:generateContent",
            "gcp.vertex_ai",
            None,
        ),
        ("/v1beta1/projects/p/locations/l/publishers/google/models", "gcp.vertex_ai", None),
    ],
)
async def test_malformed_provider_paths_are_forwarded_unchanged_and_recorded_as_errors(
    path: str,
    provider: str,
    model: str | None,
    sidecar_factory: SidecarFactory,
    simulator: RunningSimulator,
    records: RecordingSink,
) -> None:
    sidecar = await sidecar_factory({"upstreams": upstreams_at(simulator.url)})
    target = f"{path}?api-version={AZURE_API_VERSION}"
    headers = {"api-key": API_KEY, "Authorization": f"Bearer {API_KEY}"}
    body = {"messages": MESSAGES}
    answers = []
    async with httpx.AsyncClient() as http:
        for base in (simulator.url, sidecar.proxy_url):
            answers.append(await http.post(base + target, json=body, headers=headers))
    direct, proxied = answers
    # The upstream's own answer (the simulator's router 404s some of these before any
    # handler): byte for byte, so forwarded, not answered by the sidecar.
    assert proxied.status_code == direct.status_code >= 400
    assert proxied.content == direct.content
    (record,) = await records.wait_for(1)
    assert (record.provider_name, record.request.request_model) == (provider, model)
    assert (record.outcome, record.http_status) == ("upstream_error", direct.status_code)
