"""The experiments, feedback and audit config sections: every error is explained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.cli import main
from sidecar.config.load import ConfigError, load_config
from tests.helpers.experiments import split


def errors_of(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.errors


def test_every_cross_reference_error_is_reported_at_once(tmp_path: Path) -> None:
    experiment = split(85, 10, candidate_model="claude-3-5-haiku-latest")
    experiment["match"]["upstream"] = "openai"
    experiment["candidates"][0]["upstream"] = "anthropic"
    experiment["candidates"].append({"model": "x", "upstream": "nowhere", "weight": 1})
    errors = errors_of(tmp_path, {"experiments": [experiment]})
    assert len(errors) == 3, errors
    weights, protocol, unknown = errors
    assert "experiments.0 (exp): weights sum to 96 (control 85 + candidate-1 10 + " in weights
    assert "they must sum to 100" in weights
    assert "upstream 'anthropic' speaks anthropic" in protocol
    assert "speak openai: a candidate must use the same protocol" in protocol
    assert "upstream 'nowhere' is not one of: anthropic, gemini, openai" in unknown


def test_protocol_pinned_by_the_path(tmp_path: Path) -> None:
    experiment = split(50, 50, candidate_model="claude-3-5-haiku-latest")
    experiment["match"]["path"] = "/v1/chat/completions"
    experiment["candidates"][0]["upstream"] = "anthropic"
    (error,) = errors_of(tmp_path, {"experiments": [experiment]})
    assert "the control's calls (path /v1/chat/completions) speak openai" in error
    del experiment["match"]["path"]
    (error,) = errors_of(tmp_path, {"experiments": [experiment]})
    assert "set match.upstream or match.path" in error


def test_field_errors_name_the_field(tmp_path: Path) -> None:
    bad: dict[str, Any] = {
        "name": "Bad Name",
        "match": {"model": "a"},
        "candidates": [{"model": "b", "weight": 10, "variant": "other"}],
        "stop_loss": {"min_calls": 500, "window_calls": 100},
        "surprise": True,
    }
    errors = errors_of(tmp_path, {"experiments": [bad], "audit": {"redact": ["(unclosed"]}})
    text = "\n".join(errors)
    assert "experiments.0.name: experiment name 'Bad Name' must be 1-63 characters" in text
    assert "experiments.0.surprise: unknown setting" in text
    assert "min_calls (500) is larger than window_calls (100)" in text
    assert "audit.redact: redact pattern '(unclosed' is not a regex" in text


def test_variants_are_named_by_role_and_number() -> None:
    config = load_config(None, environ={})
    assert config.experiments == []
    data = split(80, 10)
    data["candidates"].append({"model": "m3", "weight": 10})
    shadow = {
        "name": "s",
        "mode": "shadow",
        "match": {"model": "other"},
        "candidates": [{"model": "m4", "weight": 5}],
    }
    from sidecar.config.models import SidecarConfig

    config = SidecarConfig.model_validate({"experiments": [data, shadow]})
    split_arms = [c.variant for c in config.experiments[0].candidates]
    assert split_arms == ["candidate-1", "candidate-2"]
    assert [c.variant for c in config.experiments[1].candidates] == ["shadow"]
    with pytest.raises(ValueError, match="must start with 'candidate'"):
        SidecarConfig.model_validate(
            {
                "experiments": [
                    split(90, 10)
                    | {"candidates": [{"model": "m", "weight": 10, "variant": "shadow"}]}
                ]
            }
        )


def test_check_config_prints_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sidecar.yaml"
    experiment = split(95, 10)
    experiment["candidates"][0]["upstream"] = "nowhere"
    path.write_text(yaml.safe_dump({"experiments": [experiment, split(90, 10)]}))
    assert main(["check-config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "4 error(s)" in out
    assert "weights sum to 105" in out
    assert "upstream 'nowhere' is not one of" in out
    assert "experiments.1 (exp): another experiment has the same name" in out
    assert "experiments.1 (exp): matches the same calls as experiment 'exp'" in out
