"""The config examples in the docs, kept true: every YAML block that names its file (first line
`# NAME.yaml`) is run through `model-sidecar check-config`, and a console block that shows
`$ model-sidecar check-config NAME.yaml` (or `$ model-sidecar slo-rules --config NAME.yaml`)
gets that command's real output under it.

python -m sidecar.tools.doc_examples          # rewrite the outputs in the docs
python -m sidecar.tools.doc_examples --check  # exit 1 when an output is stale or an example
                                              # without one is not a valid config (CI)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
DOCS = (
    "README.md",
    "docs/experiments.md",
    "docs/quota.md",
    "docs/slos.md",
    "docs/attribution.md",
    "docs/rollouts.md",
)
_FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
_FILE_HEADER = re.compile(r"^# (?P<name>[\w.-]+\.ya?ml)\s*$")
_COMMAND = re.compile(
    r"^\$ model-sidecar (?P<command>check-config|slo-rules --config) (?P<name>[\w.-]+\.ya?ml)\s*$"
)


class DocExampleError(Exception):
    """An example in the docs that is not what it claims to be."""


class CheckResult(NamedTuple):
    """What `model-sidecar check-config NAME` did with an example."""

    status: int
    output: str


def check_config(name: str, text: str, command: str = "check-config") -> CheckResult:
    """Run `model-sidecar check-config NAME` (or another `command` taking the file) on `text`, as
    a reader would: a file of that name in the current directory, no MODEL_SIDECAR_* variables
    set."""
    environ = {
        key: value for key, value in os.environ.items() if not key.startswith("MODEL_SIDECAR_")
    }
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, name).write_text(text)
        done = subprocess.run(
            [sys.executable, "-m", "sidecar.cli", *command.split(), name],
            cwd=directory,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    return CheckResult(done.returncode, done.stdout + done.stderr)


def render(text: str, doc: str) -> str:
    """`text` with the output of every check-config console block regenerated; raises
    DocExampleError for an example no console block shows that is not a valid config."""
    files: dict[str, str] = {}
    shown: set[str] = set()
    pieces: list[str] = []
    position = 0
    for block in _FENCE.finditer(text):
        body = block["body"]
        first = body.partition("\n")[0]
        header = _FILE_HEADER.match(first)
        command = _COMMAND.match(first)
        if block["lang"] == "yaml" and header:
            files[header["name"]] = body
        elif block["lang"] == "console" and command:
            name = command["name"]
            if name not in files:
                raise DocExampleError(
                    f"{doc}: `$ model-sidecar check-config {name}` comes before any ```yaml "
                    f"block starting with `# {name}`"
                )
            shown.add(name)
            result = check_config(name, files[name], command["command"])
            pieces.append(text[position : block.start("body")])
            pieces.append(f"{first}\n{result.output}")
            position = block.end("body")
    pieces.append(text[position:])
    for name, body in files.items():
        if name in shown:
            continue
        result = check_config(name, body)
        if result.status != 0:
            raise DocExampleError(
                f"{doc}: the example {name} is not a valid config:\n{result.output}"
            )
    return "".join(pieces)


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the outputs (or with --check, fail when one is stale or an example invalid)."""
    parser = argparse.ArgumentParser(prog="python -m sidecar.tools.doc_examples")
    parser.add_argument("--check", action="store_true", help="fail if a doc is out of date")
    parser.add_argument("docs", nargs="*", type=Path, help=f"the docs (default: {', '.join(DOCS)})")
    args = parser.parse_args(argv)
    status = 0
    for path in args.docs or [ROOT / doc for doc in DOCS]:
        current = path.read_text()
        try:
            expected = render(current, str(path))
        except DocExampleError as exc:
            print(exc, file=sys.stderr)
            status = 1
            continue
        if expected == current:
            continue
        if args.check:
            print(
                f"{path} is out of date: run python -m sidecar.tools.doc_examples", file=sys.stderr
            )
            status = 1
        else:
            path.write_text(expected)
    return status


if __name__ == "__main__":
    sys.exit(main())
