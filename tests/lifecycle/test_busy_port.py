"""A port that is taken: one line naming the address and why, exit status 2, no traceback —
for the proxy and the admin listener of `serve`, and for `simulate`."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture
def taken() -> Iterator[str]:
    """HOST:PORT of a loopback socket that is listening (as another sidecar would be)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield f"127.0.0.1:{holder.getsockname()[1]}"


async def run(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sidecar.cli", *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MODEL_SIDECAR_CONFIG": ""},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(("role", "flag"), [("proxy", "--listen"), ("admin", "--admin-listen")])
async def test_serve_on_a_taken_port_says_so_in_one_line(taken: str, role: str, flag: str) -> None:
    listeners = {"--listen": "127.0.0.1:0", "--admin-listen": "127.0.0.1:0", flag: taken}
    status, out, err = await run("serve", *(part for item in listeners.items() for part in item))
    assert status == 2, err
    assert "Traceback" not in err and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"model-sidecar: cannot listen on {taken} ({role}, {flag}): ")
    assert "already in use" in line and "another model-sidecar" in line


async def test_simulate_on_a_taken_port_says_so_in_one_line(taken: str) -> None:
    status, _, err = await run("simulate", "--listen", taken)
    assert status == 2 and "Traceback" not in err
    (line,) = err.splitlines()
    assert f"cannot listen on {taken}" in line and "already in use" in line
