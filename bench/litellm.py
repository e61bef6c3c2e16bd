"""The optional LiteLLM proxy contender, installed into its own virtual environment.

Default configuration (one worker) plus the Prometheus callback, with one
OpenAI-compatible model pointing at the benchmark's upstream.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from bench.contenders import Contender, Running, Setting, child_environ
from bench.loads import BENCH_KEY
from bench.procs import Child, free_port, pin_argv

# The Prometheus callback needs prometheus_client, which litellm[proxy] does not pull in.
PACKAGES = ("litellm[proxy]", "prometheus_client")


def default_venv() -> Path:
    """Where the LiteLLM virtual environment lives (outside the repository)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "model-sidecar-bench" / "litellm-venv"


def ensure_litellm(venv: Path) -> Path:
    """The `litellm` executable in `venv`, creating the venv and installing it when missing."""
    executable = venv / "bin" / "litellm"
    check = [str(venv / "bin" / "python"), "-c", "import litellm.proxy, prometheus_client"]
    if executable.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return executable
    print(f"installing {' '.join(PACKAGES)} into {venv} (once)", file=sys.stderr, flush=True)
    if not (venv / "bin" / "pip").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *PACKAGES], check=True)
    return executable


def litellm_version(venv: Path) -> str:
    """The installed LiteLLM version, for the report."""
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def litellm_config(upstream_url: str) -> dict[str, object]:
    """One model, gpt-4o-mini, served by the upstream as an OpenAI-compatible API."""
    return {
        "model_list": [
            {
                "model_name": "gpt-4o-mini",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": upstream_url + "/v1",
                    "api_key": "sk-bench-not-a-real-key",
                },
            }
        ],
        "litellm_settings": {"callbacks": ["prometheus"]},
        "general_settings": {"master_key": BENCH_KEY},
    }


async def start_litellm(setting: Setting, repetition: int) -> Running:
    """`litellm --config FILE` on the proxy core (default single worker)."""
    executable = ensure_litellm(setting.litellm_venv)
    port = free_port()
    config = setting.workdir / "litellm.yaml"
    config.write_text(yaml.safe_dump(litellm_config(setting.upstream_url)))
    argv = [str(executable), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    env = child_environ({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"})
    child = Child(
        "litellm",
        pin_argv(argv, setting.cores.proxy),
        setting.workdir / f"litellm-{repetition}.log",
        env=env,
    )
    try:
        await child.wait_for_port(port, timeout=180)
    except BaseException:
        child.stop()
        raise
    return Running(f"http://127.0.0.1:{port}", child)


LITELLM = Contender(
    "litellm", "LiteLLM proxy, default single worker, Prometheus callback", start_litellm
)
