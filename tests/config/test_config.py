"""Config: file, environment and flags, their precedence, and errors that explain themselves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.config.load import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sidecar.yaml"
    path.write_text(text)
    return path


def test_defaults_match_the_design() -> None:
    config = load_config(environ={})
    assert config.listen == "127.0.0.1:8788"
    assert config.admin_listen == "127.0.0.1:9788"
    assert config.upstreams["openai"].url == "https://api.openai.com"
    assert config.upstreams["anthropic"].protocol == "anthropic"
    assert config.upstreams["gemini"].url == "https://generativelanguage.googleapis.com"
    assert config.default_upstream == "openai"
    assert config.limits.max_request_body_bytes == 32 * 1024 * 1024
    assert config.limits.shutdown_grace_seconds == 30
    assert config.telemetry.max_model_labels == 100
    assert config.telemetry.inject_stream_usage is True


def test_flags_beat_env_beat_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "listen: 127.0.0.1:1001\nadmin_listen: 127.0.0.1:2001\n"
        "upstreams:\n  openai: {url: 'http://file:1'}\n",
    )
    env = {
        "MODEL_SIDECAR_LISTEN": "127.0.0.1:1002",
        "MODEL_SIDECAR_UPSTREAMS": "openai=http://env:2,anthropic=http://env:3",
    }
    from_file = load_config(path, environ={})
    assert from_file.listen == "127.0.0.1:1001"
    assert from_file.upstreams["openai"].url == "http://file:1"

    from_env = load_config(path, environ=env)
    assert from_env.listen == "127.0.0.1:1002"
    assert from_env.admin_listen == "127.0.0.1:2001"
    assert from_env.upstreams["openai"].url == "http://env:2"
    assert from_env.upstreams["anthropic"].url == "http://env:3"

    from_flags = load_config(
        path, listen="127.0.0.1:1003", upstreams={"openai": "http://flag:4"}, environ=env
    )
    assert from_flags.listen == "127.0.0.1:1003"
    assert from_flags.upstreams["openai"].url == "http://flag:4"
    assert from_flags.upstreams["anthropic"].url == "http://env:3"


def test_config_path_from_env(tmp_path: Path) -> None:
    path = write(tmp_path, "default_upstream: anthropic\n")
    config = load_config(environ={"MODEL_SIDECAR_CONFIG": str(path)})
    assert config.default_upstream == "anthropic"


def test_extra_named_upstream_gets_a_path_prefix() -> None:
    config = load_config(environ={}, upstreams={"vllm": "http://vllm:8000"})
    assert config.upstreams["vllm"].protocol == "openai"
    assert config.upstreams["vllm"].path_prefix == "/vllm"


def test_every_error_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "listen: nowhere\n"
        "upstreams:\n  openai: {url: 'ftp://x'}\n  other: {url: 'http://y', protocol: grpc}\n"
        "limits: {max_request_body_bytes: -1}\n"
        "telemetry: {max_model_lables: 5}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    text = str(caught.value)
    assert "listen: " in text and "HOST:PORT" in text
    assert "upstreams.openai.url" in text
    assert "upstreams.other.protocol" in text
    assert "limits.max_request_body_bytes" in text
    assert "telemetry.max_model_lables: unknown setting" in text
    assert len(caught.value.errors) == 5


def test_unknown_default_upstream_and_duplicate_prefix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"default_upstream 'nope' is not one of the upstreams"):
        load_config(write(tmp_path, "default_upstream: nope\n"), environ={})
    duplicate = (
        "upstreams:\n"
        "  a: {url: 'http://a', path_prefix: /x}\n"
        "  b: {url: 'http://b', path_prefix: /x}\n"
    )
    with pytest.raises(ConfigError, match=r"'a' and 'b' claim the same path_prefix '/x'"):
        load_config(write(tmp_path, duplicate), environ={})


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "listen: [unclosed\n"), environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", environ={})
    with pytest.raises(ConfigError, match="expected NAME=URL"):
        load_config(environ={"MODEL_SIDECAR_UPSTREAMS": "openai"})


def test_check_config_command(tmp_path: Path) -> None:
    good = write(tmp_path, "upstreams:\n  openai: {url: 'http://127.0.0.1:9'}\n")
    result = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "check-config", str(good)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "http://127.0.0.1:9" in result.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: 1\nlimits: {connect_timeout_seconds: 0}\n")
    result = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "2 error(s)" in result.stdout
    assert "limits.connect_timeout_seconds" in result.stdout
