"""Fixtures for the alert rule tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.generate import REPO_ROOT, RULES_PATH


@pytest.fixture
def rules_path() -> Path:
    """The committed plain rule file."""
    return REPO_ROOT / RULES_PATH
