"""`model-sidecar check-config` as a real subprocess: every error at once, each with file:line,
plain words, "did you mean" for misspelt keys and values, YAML syntax errors with their line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def check_config(directory: Path, text: str, **env: str) -> tuple[int, list[str], str]:
    """Run check-config on `text` saved as sidecar.yaml in `directory` (named relatively, as a
    person types it); (status, the error lines, everything printed)."""
    (directory / "sidecar.yaml").write_text(text)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_SIDECAR_")}
    done = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "check-config", "sidecar.yaml"],
        cwd=directory,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    lines = [line.strip() for line in done.stdout.splitlines()[1:]]
    return done.returncode, lines, output


def test_misspelt_keys_get_a_suggestion_and_their_line(tmp_path: Path) -> None:
    status, lines, output = check_config(
        tmp_path,
        "listn: 127.0.0.1:8788\n"
        "limits:\n"
        "  conect_timeout_seconds: 5\n"
        "telemetry: {max_model_lables: 5}\n"
        "zebra: 1\n",
    )
    assert status == 1 and "Traceback" not in output
    assert lines[0].startswith("sidecar.yaml:1: listn: unknown setting; did you mean 'listen'?")
    assert lines[1].startswith(
        "sidecar.yaml:3: limits.conect_timeout_seconds: unknown setting; "
        "did you mean 'connect_timeout_seconds'?"
    )
    assert "sidecar.yaml:4: telemetry.max_model_lables: unknown setting; did you mean" in lines[2]
    assert lines[3] == (
        "sidecar.yaml:5: zebra: unknown setting (every key is in docs/configuration.md)"
    )


def test_wrong_types_are_said_in_plain_words(tmp_path: Path) -> None:
    status, lines, output = check_config(
        tmp_path,
        "listen: 8788\n"
        "limits: {max_request_body_bytes: lots, connect_timeout_seconds: -1}\n"
        "log: {level: verbose, access_log: maybe}\n"
        "upstreams:\n"
        "  vllm: {url: 'http://vllm:8000', protocol: opneai}\n",
    )
    assert status == 1
    assert "sidecar.yaml:1: listen: expected HOST:PORT (e.g. 127.0.0.1:8788), got 8788" in lines
    assert (
        "sidecar.yaml:2: limits.max_request_body_bytes: expected a whole number, got 'lots'"
        in lines
    )
    assert "sidecar.yaml:2: limits.connect_timeout_seconds: must be more than 0, got -1" in lines
    assert any(line.startswith("sidecar.yaml:3: log.level: expected one of") for line in lines)
    assert "sidecar.yaml:3: log.access_log: expected true or false, got 'maybe'" in lines
    (protocol,) = [line for line in lines if "upstreams.vllm.protocol" in line]
    assert protocol.startswith("sidecar.yaml:5:") and "(did you mean 'openai'?)" in protocol
    assert "Input should be" not in output, "pydantic's wording never reaches a person"


def test_yaml_syntax_errors_name_the_file_and_line(tmp_path: Path) -> None:
    status, _, output = check_config(tmp_path, "listen: 127.0.0.1:8788\nlimits: [unclosed\n")
    assert status == 1
    assert "sidecar.yaml:3:1: not valid YAML: expected ',' or ']'" in output
    assert "<unicode string>" not in output
    status, _, output = check_config(tmp_path, "log:\n\tlevel: debug\n")
    assert "sidecar.yaml:2:1: not valid YAML" in output and "never tabs" in output
    status, lines, _ = check_config(tmp_path, "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n")
    assert status == 1
    assert lines == ["sidecar.yaml:2: listen: given twice (first on line 1); only the last one "
                     "would count"]  # fmt: skip


def test_cross_checks_show_with_every_other_error_at_once(tmp_path: Path) -> None:
    status, lines, _ = check_config(
        tmp_path,
        "listen: nowhere\n"
        "default_upstream: opnai\n"
        "limits: {connect_timeout_seconds: 0}\n"
        "upstreams:\n"
        "  a: {url: 'ftp://a', path_prefix: /x}\n"
        "  b: {url: 'http://b', path_prefix: /x, colour: red}\n",
    )
    assert status == 1
    places = [line.split(": ", 1)[0] for line in lines]
    assert places == [f"sidecar.yaml:{n}" for n in (1, 2, 3, 5, 6, 6)], lines
    assert "default_upstream 'opnai' is not one of the upstreams" in lines[1]
    assert lines[1].endswith("did you mean 'openai'?")
    assert "claim the same path_prefix '/x'" in "\n".join(lines)


def test_values_from_the_environment_name_the_variable(tmp_path: Path) -> None:
    status, lines, _ = check_config(
        tmp_path, "log: {level: info}\n", MODEL_SIDECAR_ADMIN_LISTEN="9788"
    )
    assert status == 1
    assert lines == [
        "MODEL_SIDECAR_ADMIN_LISTEN: admin_listen: expected HOST:PORT (e.g. 127.0.0.1:8788), "
        "got '9788'"
    ]


def test_a_file_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "check-config", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "no such file" in done.stderr and done.stdout == ""


def test_an_admin_token_file_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    status, lines, _ = check_config(tmp_path, "admin_token_file: missing-token\n")
    assert status == 1
    assert lines == ["admin_token_file missing-token: cannot read it: No such file or directory"]
    (tmp_path / "token").write_text("s3cret-value\n")
    status, _, output = check_config(tmp_path, "admin_token_file: token\n")
    assert status == 0 and "s3cret-value" not in output
