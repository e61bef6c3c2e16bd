"""`model-sidecar probe` run in the test's process against the simulated provider."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from sidecar.probe.command import ProbeOptions, run_probe
from sidecar.probe.runner import ProbeSettings

# One user message each and no per-prompt max_tokens: every answer has the profile's length.
PROMPTS = [
    {"prompt": "Classify: 'my invoice is wrong'."},
    {"prompt": "Summarise the incident in one sentence."},
    {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]},
    {"prompt": "Translate 'good morning' to French."},
]


class ProbeRun:
    """The outcome of one probe: exit status, stdout, stderr, and the JSON report if asked."""

    def __init__(self, status: int, out: str, err: str, output_format: str) -> None:
        self.status = status
        self.out = out
        self.err = err
        self.report: dict[str, Any] = json.loads(out) if output_format == "json" else {}

    def model(self, label: str) -> dict[str, Any]:
        """One model's result from the JSON report."""
        return next(m for m in self.report["models"] if m["model"] == label)


async def probe(
    models: Sequence[str],
    upstreams: Mapping[str, str],
    prompts_file: Path | None = None,
    *,
    output_format: str = "json",
    environ: Mapping[str, str] | None = None,
    max_retries: int = 0,
    **settings: Any,
) -> ProbeRun:
    """Run `model-sidecar probe` in this process with a sidecar started for it."""
    options = ProbeOptions(
        models=tuple(models),
        settings=ProbeSettings(**settings),
        prompts_file=str(prompts_file) if prompts_file else None,
        upstreams=tuple(f"{name}={url}" for name, url in upstreams.items()),
        max_retries=max_retries,
        output_format=output_format,
        progress=False,
    )
    out, err = io.StringIO(), io.StringIO()
    status = await run_probe(
        options, environ=environ or {}, stdout=out, console=Console(file=err, width=200)
    )
    return ProbeRun(status, out.getvalue(), err.getvalue(), output_format)
