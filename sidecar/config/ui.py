"""The comparison page on the admin listener (`GET /`, `/api/summary`): on or off, and how often
its history takes a snapshot of the metrics (which is also how often the page refreshes)."""

from __future__ import annotations

from pydantic import Field

from sidecar.config.strict import Strict


class UiConfig(Strict):
    """The admin listener's live comparison page."""

    enabled: bool = Field(
        default=True,
        description="Serve the comparison page (`GET /`) and `/api/summary` on the admin "
        "listener, read-only like /metrics, and keep their short history in memory.",
    )
    snapshot_interval_seconds: float = Field(
        default=5.0,
        ge=1.0,
        le=60.0,
        description="How often the page's history copies the metrics it reads (off the call "
        "path) and how often the page refreshes.",
    )
