"""Start-up (issue #23): exec of `model-sidecar serve` to the first 200 from `/readyz`.

Default config (free ports by flag, nothing else, no OTEL_* or MODEL_SIDECAR_* variables),
and the same with an OTLP endpoint set. The clock starts just before the exec (fork and exec
included) and stops at the first 200, polled every 2 ms; the median of N fresh starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.contenders import plain_environ, sidecar_command
from bench.procs import Child, free_port, pin_argv

POLL_SECONDS = 0.002


@dataclass
class StartupTimes:
    """N starts of one variant."""

    variant: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        """The median exec-to-ready time, seconds."""
        return statistics.median(self.seconds) if self.seconds else None


async def readyz_status(port: int) -> int | None:
    """The status of GET /readyz on 127.0.0.1:`port`, or None while nothing answers."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    try:
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        line = await reader.readline()
    except OSError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


async def exec_to_ready(
    env: dict[str, str], cores: tuple[int, ...], log_path: Path, timeout: float = 30.0
) -> float:
    """Seconds from exec to the first 200 from /readyz of one fresh sidecar."""
    port, admin_port = free_port(), free_port()
    argv = [*sidecar_command(), "serve", "--listen", f"127.0.0.1:{port}"]
    argv += ["--admin-listen", f"127.0.0.1:{admin_port}"]
    started = time.perf_counter()
    child = Child("sidecar", pin_argv(argv, cores), log_path, env=env)
    try:
        while time.perf_counter() - started < timeout:
            if await readyz_status(admin_port) == 200:
                return time.perf_counter() - started
            if child.process.poll() is not None:
                raise RuntimeError(f"model-sidecar serve exited:\n{child.log_tail()}")
            await asyncio.sleep(POLL_SECONDS)
        raise RuntimeError(f"/readyz did not answer 200 in {timeout} s:\n{child.log_tail()}")
    finally:
        child.stop(grace=1.0)


def installed_environ(env: dict[str, str], cache: Path) -> dict[str, str]:
    """`env` with byte-compiled modules, as a sidecar runs when pip installed it (pip
    compiles every module at install; the image sets PYTHONDONTWRITEBYTECODE only so that
    nothing is written at run time): bytecode goes to and is read from `cache`."""
    installed = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    installed["PYTHONPYCACHEPREFIX"] = str(cache)
    return installed


async def startup_times(
    runs: int, otlp_url: str, cores: tuple[int, ...], workdir: Path
) -> list[StartupTimes]:
    """`runs` starts with the default config, then `runs` with an OTLP endpoint set; each
    byte-compiled as installed (after one start that writes the bytecode, not counted), and
    again from source when this environment forbids writing bytecode (a source checkout run
    with PYTHONDONTWRITEBYTECODE compiles every module at every start)."""
    plain = plain_environ({})
    otlp = plain_environ(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_url, "OTEL_SERVICE_NAME": "model-sidecar-bench"}
    )
    cache = workdir / "bytecode"
    variants = {
        "default config": installed_environ(plain, cache),
        "OTLP endpoint set": installed_environ(otlp, cache),
    }
    if "PYTHONDONTWRITEBYTECODE" in plain:
        variants["default config, no bytecode"] = plain
        variants["OTLP endpoint set, no bytecode"] = otlp
    results: list[StartupTimes] = []
    for variant, env in variants.items():
        print(f"start-up: {variant}", file=sys.stderr, flush=True)
        if "PYTHONPYCACHEPREFIX" in env:
            await exec_to_ready(env, cores, workdir / f"startup-{len(results)}-warm.log")
        times = StartupTimes(variant)
        for run in range(runs):
            log = workdir / f"startup-{len(results)}-{run}.log"
            times.seconds.append(await exec_to_ready(env, cores, log))
        results.append(times)
    return results
