"""Fixtures for the probe tests: the test prompt set as a file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.probe import PROMPTS


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    """The test prompt set as YAML."""
    path = tmp_path / "prompts.yaml"
    path.write_text(yaml.safe_dump({"prompts": PROMPTS}))
    return path
