"""`model-sidecar serve` as a real subprocess, every upstream at one URL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence


class ServeProcess:
    """`model-sidecar serve` running as a real subprocess, with its listener URLs."""

    def __init__(
        self, process: asyncio.subprocess.Process, proxy: str, admin: str, startup: str
    ) -> None:
        self.process = process
        self.proxy = proxy
        self.admin = admin
        # What it wrote on stderr up to the line naming its listeners (that line included).
        self.startup = startup

    async def stop(self) -> tuple[int, str]:
        """SIGTERM, wait for the exit; (exit status, everything it wrote on stderr)."""
        self.process.terminate()
        assert self.process.stderr is not None
        rest = await asyncio.wait_for(self.process.stderr.read(), timeout=30)
        status = await asyncio.wait_for(self.process.wait(), timeout=30)
        return status, self.startup + rest.decode()


@contextlib.asynccontextmanager
async def serve_process(
    upstream_url: str,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    capture_stdout: bool = False,
) -> AsyncIterator[ServeProcess]:
    """Start `model-sidecar serve` with every upstream at `upstream_url` (plus `env`, and more
    flags `args`, which win over the loopback listeners); kill it if still up. Its stderr (and
    with `capture_stdout` its stdout) is a pipe the test may read once it has stopped."""
    urls = ",".join(f"{name}={upstream_url}" for name in ("openai", "anthropic", "gemini"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        *args,
        stdout=asyncio.subprocess.PIPE if capture_stdout else None,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "MODEL_SIDECAR_CONFIG": "",
            "MODEL_SIDECAR_UPSTREAMS": urls,
            **(env or {}),
        },
    )
    assert process.stderr is not None
    startup = []
    try:
        async with asyncio.timeout(20):
            while b"proxy http://" not in (line := await process.stderr.readline()):
                assert line, "model-sidecar serve exited before listening"
                startup.append(line.decode())
        text = line.decode()
        yield ServeProcess(
            process,
            text.split("proxy ")[1].split()[0],
            text.split("admin ")[1].split()[0],
            "".join(startup) + text,
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
