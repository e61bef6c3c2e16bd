"""The README's "Point an app at it" snippets, run as written against a real sidecar and the
simulator: its `serve --upstream` lines and YAML configure the sidecar (URLs pointed at the
simulator), each Python block runs unchanged but for the sidecar's address."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.providers import UPSTREAMS
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

README = Path(__file__).resolve().parents[2] / "README.md"
SIDECAR_ADDRESS = "http://127.0.0.1:8788"
# What each Python block's call is recorded as, in the README's order.
EXPECTED = [
    ("azure", "azure.ai.openai", "prod-gpt4o"),
    ("gemini", "gcp.gemini", "gemini-2.0-flash"),
    ("vertex", "gcp.vertex_ai", "gemini-2.5-flash"),
    ("vertex", "gcp.vertex_ai", "claude-sonnet-4@20250514"),
    ("ollama", "ollama", "llama3.2"),
    ("groq", "groq", "llama-3.3-70b-versatile"),
]


def section() -> str:
    text = README.read_text()
    return text.split("## Point an app at it", 1)[1].split("\n### ", 1)[0]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), re.DOTALL)


def configured_upstreams(url: str) -> dict[str, Any]:
    """The upstreams the README's serve command and YAML name, each at `url`."""
    flags = [re.findall(r"--upstream (\w+)=\S+", block) for block in blocks("sh")]
    names = [name for found in flags for name in found]
    # Bedrock's snippet has its own section, run by tests/bedrock (it needs AWS signing).
    assert names == ["azure", "vertex", "ollama", "bedrock"]
    upstreams: dict[str, Any] = {name: {"url": url} for name in UPSTREAMS}
    for block in blocks("yaml"):
        for name, entry in yaml.safe_load(block)["upstreams"].items():
            upstreams[name] = {**entry, "url": url}
    return upstreams


def application_default_credentials(tmp_path: Path) -> Path:
    """An ADC file as `gcloud auth application-default login` writes it, with a cached
    access token valid for years: google-auth uses it without calling Google."""
    path = tmp_path / "application_default_credentials.json"
    info = {
        "type": "authorized_user",
        "client_id": "test-client.apps.googleusercontent.com",
        "client_secret": "test",
        "refresh_token": "test",
        "token": API_KEY,
        "expiry": "2099-01-01T00:00:00Z",
    }
    path.write_text(json.dumps(info))
    return path


def test_the_readme_has_a_snippet_per_provider() -> None:
    code = blocks("python")
    assert len(code) == len(EXPECTED)
    markers = ["AzureOpenAI(", "genai.Client(", "vertexai=True", "AnthropicVertex("]
    markers += ["ollama.Client(", "OpenAI("]
    for snippet, marker in zip(code, markers, strict=True):
        assert marker in snippet and SIDECAR_ADDRESS in snippet


async def test_every_snippet_runs_through_the_sidecar(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sidecar_factory: SidecarFactory,
    simulator: RunningSimulator,
    records: RecordingSink,
) -> None:
    sidecar = await sidecar_factory({"upstreams": configured_upstreams(simulator.url)})
    for variable in (
        "AZURE_OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "VERTEX_ACCESS_TOKEN",
        "GROQ_API_KEY",
    ):
        monkeypatch.setenv(variable, API_KEY)
    adc = application_default_credentials(tmp_path)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    for position, snippet in enumerate(blocks("python")):
        code = snippet.replace(SIDECAR_ADDRESS, sidecar.proxy_url)
        # Synchronous clients: run them off the loop the sidecar serves on.
        await asyncio.to_thread(exec, compile(code, f"README snippet {position + 1}", "exec"), {})
        (record,) = (await records.wait_for(position + 1))[position:]
        upstream, provider, model = EXPECTED[position]
        assert (record.upstream, record.provider_name) == (upstream, provider)
        assert (record.request.request_model, record.outcome) == (model, "ok")
        assert record.input_tokens and record.output_tokens
        assert (record.cost_usd is not None) is (provider != "ollama")
    # The vendor's prefix is the sidecar's; the vendor sees its own path.
    assert simulator.sim.received[-1].path_qs == "/v1/chat/completions"
