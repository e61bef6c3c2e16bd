"""Retry settings: client retry detection and the sidecar's own retry policy."""

from __future__ import annotations

from pydantic import Field, field_validator

from sidecar.config.strict import Strict


class RetryConfig(Strict):
    """Client retry detection, and the sidecar's own retry policy (off by default)."""

    enabled: bool = Field(default=False, description="Let the sidecar retry failed attempts.")
    max_attempts: int = Field(default=3, ge=1, le=10, description="Attempts per call, first incl.")
    statuses: list[int] = Field(
        default_factory=lambda: [429, 502, 503, 504],
        description="Upstream statuses (400-599) that are retried.",
    )
    retry_connect_errors: bool = Field(
        default=True, description="Also retry attempts that could not reach the upstream."
    )
    backoff_initial_seconds: float = Field(
        default=0.25,
        ge=0,
        description="Backoff before the first retry without Retry-After; doubles each retry, "
        "with jitter.",
    )
    backoff_max_seconds: float = Field(default=4.0, ge=0, description="Longest backoff.")
    max_retry_after_seconds: float = Field(
        default=30.0,
        ge=0,
        description="A longer Retry-After is passed to the app instead of waited for.",
    )
    budget_ratio: float = Field(
        default=0.1, ge=0, le=1, description="Retries may be at most this share of calls."
    )
    budget_window_seconds: float = Field(
        default=60.0, gt=0, description="Sliding window of the retry budget."
    )
    budget_min_retries: int = Field(
        default=3, ge=0, description="Retries always allowed per window, however few calls."
    )
    idempotency_window_seconds: float = Field(
        default=600.0, ge=0, description="A repeated Idempotency-Key within this is a retry."
    )
    idempotency_max_keys: int = Field(
        default=10000, ge=0, description="Idempotency-Key hashes remembered (oldest forgotten)."
    )

    @field_validator("statuses")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        for status in value:
            if not 400 <= status <= 599:
                raise ValueError(f"expected HTTP error statuses (400-599), got {status}")
        return value
