"""A sidecar loads only what its config uses (issue #23): `model-sidecar serve` with the
default config imports neither the OpenTelemetry SDK, nor PyYAML, nor aiohttp, nor the price
data; each is loaded when something asks for it.

Observed in the real served process: a `sitecustomize` put first on its PYTHONPATH writes the
names in `sys.modules` to a file when the process exits (after SIGTERM, a graceful stop).
"""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp

from tests.helpers.serve import serve_process
from tests.helpers.simulator import RunningSimulator

# Imported by none of the three runs (the admin listener and the upstream client are
# sidecar/http1's own).
NEVER = ("aiohttp",)
# Loaded only when configured or needed.
LAZY = ("opentelemetry.sdk.trace", "opentelemetry.sdk.metrics", "yaml", "genai_prices")

SITECUSTOMIZE = """
import atexit, os, sys

def _dump():
    with open(os.environ["LAZY_IMPORTS_DUMP"], "w") as out:
        out.write("\\n".join(sorted(sys.modules)))

atexit.register(_dump)
"""


def environ_with_dump(tmp_path: Path, name: str, extra: dict[str, str]) -> tuple[dict, Path]:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    dump = tmp_path / f"{name}.modules"
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path, "LAZY_IMPORTS_DUMP": str(dump), **extra}
    for key in os.environ:
        if key.startswith("OTEL_") and key not in env:
            env[key] = ""  # the test's own environment must not turn anything on
    return env, dump


async def served_modules(
    simulator: RunningSimulator,
    tmp_path: Path,
    name: str,
    extra: dict[str, str],
    args: tuple[str, ...] = (),
    call: bool = False,
) -> set[str]:
    env, dump = environ_with_dump(tmp_path, name, extra)
    async with serve_process(simulator.url, env=env, args=args) as served:
        async with aiohttp.ClientSession() as http:
            async with http.get(served.admin + "/readyz") as response:
                assert response.status == 200
            async with http.get(served.admin + "/metrics") as response:
                assert response.status == 200
            if call:
                body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
                url = served.proxy + "/v1/chat/completions"
                headers = {"Authorization": "Bearer sk-test"}
                async with http.post(url, json=body, headers=headers) as response:
                    assert response.status == 200
        status, stderr = await served.stop()
    assert status == 0, stderr
    return set(dump.read_text().split())


def loaded(modules: set[str], name: str) -> bool:
    return name in modules


async def test_the_default_config_loads_none_of_the_optional_parts(
    simulator: RunningSimulator, tmp_path: Path
) -> None:
    modules = await served_modules(simulator, tmp_path, "default", {})
    assert "sidecar.app" in modules  # the dump saw the served process
    for name in (*NEVER, *LAZY):
        assert not loaded(modules, name), name


async def test_each_part_is_loaded_when_configured(
    simulator: RunningSimulator, tmp_path: Path
) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text("log:\n  level: info\n")
    otlp = {
        # Nothing listens there: spans and metrics are dropped, calls are unaffected.
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_METRICS_EXPORTER": "otlp",
    }
    modules = await served_modules(
        simulator, tmp_path, "configured", otlp, ("--config", str(config)), call=True
    )
    for name in LAZY:
        assert loaded(modules, name), name
    for name in NEVER:
        assert not loaded(modules, name), name
