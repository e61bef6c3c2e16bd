"""promtool as the alert tests run it: skipped without the binary, failed when CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from alerts.generate import REPO_ROOT


def promtool_binary() -> str:
    """Path of promtool; skips the test without it (fails it when CI=true)."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not found (Debian package `prometheus`)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_promtool(*args: str | Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """Run promtool with `args`; returns the finished process (never raises on exit status)."""
    return subprocess.run(
        [promtool_binary(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
