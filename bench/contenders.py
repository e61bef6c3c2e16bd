"""The contenders: how each proxy (or none) is started in front of the upstream."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from bench.procs import Child, Cores, free_port, pin_argv


@dataclass(frozen=True)
class Setting:
    """What every contender of one run shares."""

    workdir: Path
    cores: Cores
    upstream_url: str
    otlp_url: str
    metrics_port: int  # the full-telemetry sidecar's admin port, which is scraped
    litellm_venv: Path


@dataclass
class Running:
    """A started contender: the base URL apps would use, and its process (None for direct)."""

    url: str
    child: Child | None = None
    ready_url: str | None = None  # the sidecar's /readyz

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for a 200 from /readyz (contenders without one are ready once they listen)."""
        if self.ready_url is None:
            return
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                try:
                    async with http.get(self.ready_url) as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, OSError):
                    pass
                await asyncio.sleep(0.01)
        raise RuntimeError(f"{self.ready_url} did not answer 200 in {timeout} s")

    @property
    def pid(self) -> int | None:
        """The proxy's process id."""
        return self.child.pid if self.child is not None else None

    def stop(self) -> None:
        """Stop the proxy process."""
        if self.child is not None:
            self.child.stop()


Starter = Callable[[Setting, int], Awaitable[Running]]


@dataclass(frozen=True)
class Contender:
    """One line of the table."""

    name: str
    description: str
    start: Starter


def child_environ(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without OTEL_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra)
    return env


async def start_direct(setting: Setting, repetition: int) -> Running:
    """No proxy: the load goes straight to the upstream."""
    return Running(setting.upstream_url)


def sidecar_command() -> list[str]:
    """How to exec `model-sidecar`: the console script installed beside this Python (not a
    version manager's shim, which would add its own start-up), else the one on PATH, else
    `python -m sidecar.cli`."""
    beside = Path(sys.executable).parent / "model-sidecar"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    script = shutil.which("model-sidecar")
    return [script] if script else [sys.executable, "-m", "sidecar.cli"]


def sidecar_argv(config_path: Path) -> list[str]:
    """`model-sidecar serve --config FILE`."""
    return [*sidecar_command(), "serve", "--config", str(config_path)]


def plain_environ(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without OTEL_* or MODEL_SIDECAR_* settings, plus `extra`."""
    env = {k: v for k, v in child_environ({}).items() if not k.startswith("MODEL_SIDECAR_")}
    env.update(extra)
    return env


async def _start_sidecar(setting: Setting, repetition: int, full: bool) -> Running:
    name = "sidecar-full" if full else "sidecar-off"
    port = free_port()
    admin_port = setting.metrics_port if full else free_port()
    config = {
        "listen": f"127.0.0.1:{port}",
        "admin_listen": f"127.0.0.1:{admin_port}",
        "upstreams": {"openai": {"url": setting.upstream_url}},
    }
    config_path = setting.workdir / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    if full:
        env = child_environ(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": setting.otlp_url,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_SERVICE_NAME": "model-sidecar-bench",
            }
        )
    else:
        env = child_environ({"OTEL_SDK_DISABLED": "true"})
    child = Child(
        name,
        pin_argv(sidecar_argv(config_path), setting.cores.proxy),
        setting.workdir / f"{name}-{repetition}.log",
        env=env,
    )
    try:
        await child.wait_for_port(admin_port, timeout=30)
    except BaseException:
        child.stop()
        raise
    return Running(f"http://127.0.0.1:{port}", child, f"http://127.0.0.1:{admin_port}/readyz")


async def start_sidecar_default(setting: Setting, repetition: int) -> Running:
    """The sidecar as shipped: no config file, only free ports and the upstream on the command
    line, no OTEL_* variables (so no span export), nobody scraping."""
    port, admin_port = free_port(), free_port()
    argv = [*sidecar_command(), "serve", "--listen", f"127.0.0.1:{port}"]
    argv += ["--admin-listen", f"127.0.0.1:{admin_port}"]
    argv += ["--upstream", f"openai={setting.upstream_url}"]
    child = Child(
        "sidecar-default",
        pin_argv(argv, setting.cores.proxy),
        setting.workdir / f"sidecar-default-{repetition}.log",
        env=plain_environ({}),
    )
    try:
        await child.wait_for_port(admin_port, timeout=30)
    except BaseException:
        child.stop()
        raise
    return Running(f"http://127.0.0.1:{port}", child, f"http://127.0.0.1:{admin_port}/readyz")


async def start_sidecar_full(setting: Setting, repetition: int) -> Running:
    """The sidecar with Prometheus scraped and spans exported over OTLP/HTTP."""
    return await _start_sidecar(setting, repetition, full=True)


async def start_sidecar_off(setting: Setting, repetition: int) -> Running:
    """The sidecar with no span export and nobody scraping it."""
    return await _start_sidecar(setting, repetition, full=False)


async def start_passthrough(setting: Setting, repetition: int) -> Running:
    """bench/passthrough.py: bare aiohttp, no telemetry."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.passthrough",
        "--listen",
        f"127.0.0.1:{port}",
        "--upstream",
        setting.upstream_url,
    ]
    child = Child(
        "passthrough",
        pin_argv(argv, setting.cores.proxy),
        setting.workdir / f"passthrough-{repetition}.log",
        env=child_environ({}),
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        await child.wait_for_port(port, timeout=30)
    except BaseException:
        child.stop()
        raise
    return Running(f"http://127.0.0.1:{port}", child)


DIRECT = Contender("direct", "no proxy: the upstream's own ceiling", start_direct)
SIDECAR_FULL = Contender(
    "sidecar-full",
    "model-sidecar serve; Prometheus scraping /metrics every 1 s; spans over OTLP/HTTP",
    start_sidecar_full,
)
SIDECAR_OFF = Contender(
    "sidecar-off", "model-sidecar serve; no OTLP endpoint, not scraped", start_sidecar_off
)
SIDECAR_DEFAULT = Contender(
    "sidecar-default",
    "model-sidecar serve, default config (ports, upstream by flag); no OTLP, not scraped",
    start_sidecar_default,
)
PASSTHROUGH = Contender(
    "passthrough", "bench/passthrough.py: bare aiohttp on uvloop, streaming", start_passthrough
)


def contenders(nginx: bool, litellm: bool) -> list[Contender]:
    """The contenders of one run, the optional ones when asked for."""
    chosen = [DIRECT, SIDECAR_FULL, SIDECAR_OFF, PASSTHROUGH]
    if nginx:
        from bench.nginx import NGINX

        chosen.append(NGINX)
    if litellm:
        from bench.litellm import LITELLM

        chosen.append(LITELLM)
    return chosen
