"""`model-sidecar demo` runs the whole product with no network and prints what it measured."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_runs_and_prints_a_row_per_model() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "demo", "--seconds", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for model in ("gpt-4o-mini", "gpt-4.1-nano", "claude-sonnet-4"):
        row = next(line for line in out.splitlines() if f" {model} " in line)
        calls = int(re.split(r"\s*│\s*", row.strip("│ "))[1])
        assert calls > 0, row
    assert re.search(r"metrics were served at http://127\.0\.0\.1:\d+/metrics", out)
