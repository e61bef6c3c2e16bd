"""`model-sidecar serve` as a real subprocess, every upstream at one URL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator


class ServeProcess:
    """`model-sidecar serve` running as a real subprocess, with its listener URLs."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        proxy: str,
        admin: str,
        startup: bytes = b"",
    ) -> None:
        self.process = process
        self.proxy = proxy
        self.admin = admin
        # What it wrote on stderr up to and including the line naming its listeners.
        self.startup = startup


@contextlib.asynccontextmanager
async def serve_process(
    upstream_url: str, env: dict[str, str] | None = None
) -> AsyncIterator[ServeProcess]:
    """Start `model-sidecar serve` with every upstream at `upstream_url` (plus `env`); kill it
    if still up."""
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
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "MODEL_SIDECAR_CONFIG": "",
            "MODEL_SIDECAR_UPSTREAMS": urls,
            **(env or {}),
        },
    )
    assert process.stderr is not None
    startup: list[bytes] = []
    try:
        async with asyncio.timeout(20):
            while b"proxy http://" not in (line := await process.stderr.readline()):
                assert line, "model-sidecar serve exited before listening"
                startup.append(line)
        text = line.decode()
        yield ServeProcess(
            process,
            text.split("proxy ")[1].split()[0],
            text.split("admin ")[1].split()[0],
            b"".join([*startup, line]),
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
