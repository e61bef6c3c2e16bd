"""What a running sidecar takes from a reloaded config (SIGHUP or a changed file), and what not;
and the history of reloads that /status shows."""

from __future__ import annotations

import time
from typing import Any

# Sections a reload cannot change in a running process: a change is logged and ignored.
RESTART_SECTIONS = (
    "listen",
    "admin_listen",
    "telemetry",
    "log",
    "cost",
    "confidence",
    "repeatability",
    "ui",
)

# How often the config file is checked for a change (Kubernetes swaps a ConfigMap's symlink).
RELOAD_INTERVAL_SECONDS = 5.0


class ReloadHistory:
    """What /status shows of reloads: how many were applied, when the last one was, and the
    errors of the last rejected one (cleared by the next applied reload)."""

    def __init__(self) -> None:
        self.count = 0
        self.last_unix: float | None = None
        self.last_errors: list[str] = []

    def applied(self) -> None:
        """A reload was applied now."""
        self.count += 1
        self.last_unix = time.time()
        self.last_errors = []

    def rejected(self, errors: list[str]) -> None:
        """A reload was rejected for `errors`; the old config keeps serving."""
        self.last_errors = list(errors)

    def snapshot(self) -> dict[str, Any]:
        """The history as JSON for /status."""
        return {"count": self.count, "last_unix": self.last_unix, "last_errors": self.last_errors}
