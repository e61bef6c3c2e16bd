"""Render the dashboards to JSON and write or check the committed files."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import comparison, health, overview
from dashboards.layout import DashboardSpec, build

REPO_ROOT = Path(__file__).resolve().parent.parent
# The committed copies: next to the generator, and in the Helm chart's files for its ConfigMap.
CHART_DASHBOARDS = REPO_ROOT / "helm" / "model-sidecar" / "files" / "dashboards"
OUTPUT_DIRS = (REPO_ROOT / "dashboards", CHART_DASHBOARDS)

SPECS: dict[str, Callable[[], DashboardSpec]] = {
    "model-sidecar-overview.json": overview.spec,
    "model-sidecar-comparison.json": comparison.spec,
    "model-sidecar-health.json": health.spec,
}


def to_json(spec: DashboardSpec) -> str:
    """The dashboard as the JSON Grafana imports, with a trailing newline."""
    return json.dumps(build(spec), cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {name: to_json(make()) for name, make in SPECS.items()}


def load_all() -> dict[str, dict[str, Any]]:
    """File name → the generated dashboard as plain JSON data (what Grafana would read)."""
    return {name: json.loads(text) for name, text in render_all().items()}


def write(directories: Iterable[Path] = OUTPUT_DIRS) -> list[Path]:
    """Write every dashboard into each directory; returns the files written."""
    written = []
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in render_all().items():
            path = directory / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def stale(directories: Sequence[Path] = OUTPUT_DIRS) -> list[Path]:
    """The committed files that are missing or differ from what the generator produces."""
    rendered = render_all()
    return [
        directory / name
        for directory in directories
        for name, text in rendered.items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
