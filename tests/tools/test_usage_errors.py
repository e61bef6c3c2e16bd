"""Usage errors exit 2 for every subcommand, like argparse: a line or two saying what is wrong,
never a traceback."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

# (arguments, what the explanation says)
CASES = [
    (["serve", "--listen", "nowhere"], "expected HOST:PORT"),
    (["serve", "--upstream", "openai"], "expected NAME=URL"),
    (["check-config"], "the following arguments are required: file"),
    (["check-config", "/no/such/sidecar.yaml"], "no such file"),
    (["probe", "--model", "gpt-4o-mini"], "expected NAME:MODEL"),
    (["probe", "--model", "openai:"], "expected NAME:MODEL"),
    (["report"], "give a sidecar's admin URL or --prometheus URL"),
    (["report", "--prometheus", "http://127.0.0.1:1", "--window", "5q"], "--window"),
    (["report", "ftp://example.com/"], "expected the admin URL of a sidecar"),
    (["demo", "--duration", "-1"], "must be more than 0"),
    (["demo", "--rps", "lots"], "expected a number"),
    (["simulate", "--listen", "nowhere"], "--listen must be HOST:PORT"),
    (["inject-webhook", "--listen", "x", "--tls-cert", "c", "--tls-key", "k", "--injection", "i"],
     "expected HOST:PORT"),
    (["inject-webhook", "--tls-cert", "c", "--tls-key", "k", "--injection", "/no/such.json"],
     "/no/such.json"),
    (["no-such-command"], "invalid choice"),
]  # fmt: skip


async def run(*args: str, code: str | None = None) -> tuple[int, str, str]:
    command = ["-c", code] if code else ["-m", "sidecar.cli", *args]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MODEL_SIDECAR_CONFIG": ""},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(("args", "says"), CASES, ids=[" ".join(args) for args, _ in CASES])
async def test_usage_errors_exit_2_and_say_why(args: list[str], says: str) -> None:
    status, out, err = await run(*args)
    assert status == 2, (out, err)
    assert says in err and "Traceback" not in err + out


async def test_demo_without_the_sdks_says_which_extra_to_install() -> None:
    # As after a plain `pip install model-sidecar`: the SDKs of the [demo] extra are missing.
    hide = "import sys; sys.modules['anthropic'] = None; sys.modules['openai'] = None"
    code = f"{hide}; from sidecar.cli import main; sys.exit(main(['demo', '--duration', '1']))"
    status, out, err = await run(code=code)
    assert status == 2 and out == ""
    assert err.splitlines() == [
        "model-sidecar demo: the demo needs the openai and anthropic SDKs: "
        "pip install 'model-sidecar[demo]'"
    ]
