"""A real headless browser for tests: Debian's `chromium` driven by Playwright for Python (never
`playwright install`: the system's browser is used), with a log of every request a page makes
and of what its console reports.

    async with headless_chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        log = BrowserLog(page)

A missing `chromium` or `playwright` skips the test, or fails it when CI=true (scripts/test.sh
installs both). Screenshots go to `artifact_dir(...)`: build/test-artifacts/ of the repository,
or $MODEL_SIDECAR_TEST_ARTIFACTS.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
ARTIFACTS_ENV = "MODEL_SIDECAR_TEST_ARTIFACTS"


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def headless_chromium() -> AsyncIterator[Any]:
    """A launched headless Chromium (playwright.async_api.Browser), closed on exit."""
    executable = shutil.which("chromium")
    if executable is None:
        _missing("chromium not found (Debian package `chromium`)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("playwright not installed (pip install playwright; never `playwright install`)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_FLAGS)
        )
        try:
            yield browser
        finally:
            await browser.close()


class BrowserLog:
    """Every request a page made, and the errors its console and scripts reported."""

    def __init__(self, page: Any) -> None:
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append((request.method, request.url)))
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")


def artifact_dir(name: str) -> Path:
    """A directory for a test run's artifacts (screenshots), created if needed."""
    root = os.environ.get(ARTIFACTS_ENV)
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path
