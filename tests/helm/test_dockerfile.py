"""The image recipe agrees with the chart: entrypoint, command, ports, user, read-only FS."""

from __future__ import annotations

import json
import shlex
import tomllib
from typing import Any

import yaml

from sidecar.cli import build_parser
from sidecar.config.models import split_host_port
from tests.helpers.chart import CHART_DIR, REPO

DOCKERFILE = REPO / "Dockerfile"


def _final_stage() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last stage, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    instructions = [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def _one(name: str) -> str:
    (value,) = [args for instruction, args in _final_stage() if instruction == name]
    return value


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART_DIR / "values.yaml").read_text())


def test_entrypoint_is_the_console_script() -> None:
    entrypoint = json.loads(_one("ENTRYPOINT"))
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["model-sidecar"] and "model-sidecar" in scripts


def test_default_command_serves_with_the_charts_admin_port() -> None:
    args = build_parser().parse_args(json.loads(_one("CMD")))
    assert args.command == "serve"
    assert split_host_port(args.admin_listen) == ("0.0.0.0", _values()["sidecar"]["adminPort"])
    assert args.listen is None  # the proxy keeps its loopback default


def test_exposed_ports_are_the_charts() -> None:
    sidecar = _values()["sidecar"]
    assert sorted(int(port) for port in _one("EXPOSE").split()) == sorted(
        [sidecar["proxyPort"], sidecar["adminPort"]]
    )


def test_runs_as_the_charts_non_root_user_with_nothing_to_write() -> None:
    user, group = _one("USER").split(":")
    context = _values()["sidecar"]["securityContext"]
    assert (int(user), int(group)) == (context["runAsUser"], context["runAsGroup"]) != (0, 0)
    env = dict(item.split("=", 1) for item in shlex.split(_one("ENV")))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_final_stage_only_copies_a_built_environment() -> None:
    instructions = {name for name, _ in _final_stage()}
    assert "RUN" not in instructions  # no package manager, no compiler in the image
    (copy,) = [args for name, args in _final_stage() if name == "COPY"]
    assert copy.startswith("--from=build ")


def test_build_context_holds_only_the_package() -> None:
    lines = (REPO / ".dockerignore").read_text().split()
    assert lines[lines.index("*") + 1 :][:3] == ["!pyproject.toml", "!README.md", "!sidecar/"]


def test_the_image_installs_the_aws_extra_for_bedrock_signing() -> None:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    (install,) = [
        line for line in text.splitlines() if "pip install" in line and "/wheels/" in line
    ]
    assert '/wheels/*.whl)[aws]"' in install
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(requirement.startswith("botocore") for requirement in extras["aws"])
