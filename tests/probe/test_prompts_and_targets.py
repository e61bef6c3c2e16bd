"""Prompt files (JSON lines, YAML) and `--model` resolution: keys, upstreams, clear problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config.load import load_config
from sidecar.probe.prompts import DEFAULT_PROMPTS, Prompt, PromptFileError, load_prompts
from sidecar.probe.runner import ProbeSettings, plan_calls
from sidecar.probe.targets import resolve_targets, upstreams_of_config, upstreams_of_status
from sidecar.tools.traffic import PLACEHOLDER_KEY, ModelTarget


def test_json_lines_and_yaml_give_the_same_prompts(tmp_path: Path) -> None:
    lines = tmp_path / "p.jsonl"
    lines.write_text(
        '{"prompt": "Hello", "max_tokens": 32}\n'
        "\n# comments and blank lines are skipped\n"
        '{"messages": [{"role": "system", "content": "Be brief."}, '
        '{"role": "user", "content": "Why?"}]}\n'
    )
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text(
        "- prompt: Hello\n  max_tokens: 32\n"
        "- messages:\n"
        "    - {role: system, content: Be brief.}\n"
        "    - {role: user, content: 'Why?'}\n"
    )
    expected = [
        Prompt.user("Hello", max_tokens=32),
        Prompt(({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"})),
    ]
    assert load_prompts(lines) == expected
    assert load_prompts(yaml_file) == expected


def test_every_problem_in_a_prompt_file_is_reported_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "prompts:\n"
        "  - prompt: ok\n"
        "  - {prompt: x, messages: [{role: user, content: y}]}\n"
        "  - {messages: [{role: robot, content: y}]}\n"
        "  - {prompt: x, max_tokens: 0}\n"
        "  - {messages: [{role: system, content: only a system prompt}]}\n"
        "  - {prompt: x, temperature: 1}\n"
    )
    with pytest.raises(PromptFileError) as caught:
        load_prompts(path)
    errors = "\n".join(caught.value.errors)
    assert "item 2: give either `messages` (a list) or `prompt` (a string)" in errors
    assert "item 3: messages.0.role:" in errors
    assert "item 4: max_tokens: Input should be greater than 0" in errors
    assert "item 5: `messages` needs at least one message with role `user`" in errors
    assert "item 6: temperature: unknown field" in errors
    assert len(caught.value.errors) == 5
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(PromptFileError, match="no prompts"):
        load_prompts(empty)


def test_the_default_prompt_set_is_small_and_varied() -> None:
    assert 5 <= len(DEFAULT_PROMPTS) <= 12
    assert any(m["role"] == "system" for p in DEFAULT_PROMPTS for m in p.messages)
    assert any(p.max_tokens for p in DEFAULT_PROMPTS)


def test_every_model_gets_the_same_calls_in_the_same_order() -> None:
    prompts = [Prompt.user("a"), Prompt.user("b", max_tokens=8), Prompt.user("c")]
    settings = ProbeSettings(requests=5, repeat=3, repeat_prompts=2, max_tokens=100, logprobs=True)
    openai = plan_calls(ModelTarget("openai", "m"), prompts, settings)
    anthropic = plan_calls(ModelTarget("anthropic", "m"), prompts, settings)
    assert [c.messages for c in openai] == [c.messages for c in anthropic]
    assert [c.messages[0]["content"] for c in openai] == list("abcab") + list("ababab")
    assert [c.temperature for c in openai] == [None] * 5 + [0.0] * 6
    assert [c.max_tokens for c in openai[:3]] == [100, 8, 100]
    assert all(c.logprobs for c in openai) and not any(c.logprobs for c in anthropic)


def test_keys_are_required_only_for_public_endpoints_and_never_sent_elsewhere() -> None:
    config = load_config(
        upstreams={"anthropic": "http://127.0.0.1:9", "vllm": "http://127.0.0.1:8000"},
        environ={},
    )
    upstreams = upstreams_of_config(config)
    environ = {"OPENAI_API_KEY": "sk-real", "VLLM_API_KEY": ""}
    probes = {
        p.label: p
        for p in resolve_targets(
            [
                "openai:gpt-4o-mini",
                "anthropic:claude-sonnet-4",
                "gemini:gemini-2.0-flash",
                "vllm:llama-3.1-8b",
                "nope",
            ],
            upstreams,
            environ,
        )
    }
    openai = probes["openai:gpt-4o-mini"]
    assert openai.problem is None and openai.api_key == "sk-real"
    assert openai.metrics_key == ("openai", "gpt-4o-mini")
    local = probes["anthropic:claude-sonnet-4"]
    assert local.problem is None and local.api_key == PLACEHOLDER_KEY
    gemini = probes["gemini:gemini-2.0-flash"]
    assert gemini.problem is not None and "GEMINI_API_KEY or GOOGLE_API_KEY" in gemini.problem
    vllm = probes["vllm:llama-3.1-8b"]
    assert vllm.target == ModelTarget("openai", "llama-3.1-8b", path_prefix="/vllm")
    assert vllm.api_key == PLACEHOLDER_KEY, "the OpenAI key never goes to a self-hosted server"
    assert vllm.metrics_key == ("vllm", "llama-3.1-8b")
    assert "expected NAME:MODEL" in (probes["nope"].problem or "")

    duplicates = resolve_targets(["openai:gpt-4o-mini"] * 2, upstreams, environ)
    assert duplicates[0].problem is None
    assert duplicates[1].problem == "same model and upstream as 'openai:gpt-4o-mini'"
    google = resolve_targets(["gemini:gemini-2.0-flash"], upstreams, {"GOOGLE_API_KEY": "g"})
    assert google[0].problem is None and google[0].api_key == "g"


def test_a_running_sidecars_upstreams_come_from_its_status() -> None:
    status = {
        "upstreams": {
            "openai": {"url": "https://api.openai.com", "protocol": "openai", "path_prefix": ""},
            "local": {"url": "http://vllm:8000", "protocol": "openai", "path_prefix": "/v"},
        }
    }
    (probe,) = resolve_targets(["local:qwen"], upstreams_of_status(status), {})
    assert probe.target == ModelTarget("openai", "qwen", path_prefix="/v")
    (missing,) = resolve_targets(["openai:gpt-4o"], upstreams_of_status(status), {})
    assert missing.problem is not None and "OPENAI_API_KEY" in missing.problem
