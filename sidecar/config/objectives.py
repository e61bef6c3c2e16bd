"""What on-call promises and pays for: service level objectives (`slos:`), the request header
that attributes calls to a team or feature (`attribution:`), and spend budgets per attribution
value (`budgets:`). The sidecar reads `attribution` per call; `slos` and `budgets` become
Prometheus rules (`model-sidecar slo-rules`, the chart's PrometheusRule)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sidecar.config.strict import Strict

# A Prometheus duration of one unit, as SLO windows are written (`28d`, `30d`, `7d`, `1h`).
_WINDOW = re.compile(r"^[1-9][0-9]*[mhdw]$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# Header names are tokens (RFC 9110); label values of attribution must be printable.
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Attribution values the sidecar itself uses.
RESERVED_ATTRIBUTION_VALUES = ("other", "none")


class SloConfig(Strict):
    """One service level objective, turned into recording rules, burn-rate alerts and an
    error-budget series by `model-sidecar slo-rules`."""

    name: str = Field(description="Unique name; the `slo` label of every series and alert.")
    kind: Literal["success", "latency"] = Field(
        description="`success`: calls that did not fail on the provider's side (429s and 5xx "
        "count as failures, the app's own 4xx do not); `latency`: calls faster than "
        "`threshold_seconds`."
    )
    objective: float = Field(
        gt=0.0,
        lt=1.0,
        description="Share of good calls promised, e.g. 0.999 (99.9 %) or 0.99.",
    )
    window: str = Field(
        default="28d",
        description="The SLO window (`28d`, `30d`, `7d`): the error budget is spent over it.",
    )
    model: str | None = Field(
        default=None,
        description="Only calls of this `gen_ai_request_model` (unset: every model).",
    )
    upstream: str | None = Field(
        default=None, description="Only calls to this upstream (unset: every upstream)."
    )
    measure: Literal["duration", "ttft"] = Field(
        default="duration",
        description="Latency SLOs: `duration` (the whole call) or `ttft` (time to the first "
        "chunk: streamed calls only).",
    )
    threshold_seconds: float | None = Field(
        default=None,
        gt=0.0,
        description="Latency SLOs: a call is good when faster than this. It must be a bucket "
        "boundary of the histogram (0.01 s doubling to 81.92 s, then 163.84, 327.68, 600): "
        "`slo-rules` names the nearest ones otherwise.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"SLO name {value!r}: use letters, digits, `.`, `_`, `-` (at most 63 characters)"
            )
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not _WINDOW.match(value):
            raise ValueError(f"window {value!r}: expected a duration like 28d, 30d, 7d or 12h")
        return value

    @model_validator(mode="after")
    def _latency_needs_threshold(self) -> SloConfig:
        if self.kind == "latency" and self.threshold_seconds is None:
            raise ValueError(f"SLO {self.name!r}: a latency SLO needs threshold_seconds")
        if self.kind == "success" and self.threshold_seconds is not None:
            raise ValueError(f"SLO {self.name!r}: threshold_seconds is for latency SLOs only")
        return self


class AttributionConfig(Strict):
    """The request header that attributes a call to a team or feature (the `attribution`
    label of the model_sidecar_attribution_* counters)."""

    header: str = Field(description="Request header to read, e.g. `x-team`.")
    values: list[str] | None = Field(
        default=None,
        description="Allow-list of values; any other value becomes `other`. Unset: the first "
        "`max_values` distinct values seen are kept, later new ones become `other`.",
    )
    max_values: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Bound on distinct values without an allow-list (the label set never "
        "grows past it; `other` and `none` come on top).",
    )
    strip: bool = Field(
        default=False,
        description="Remove the header before forwarding (the provider never sees it).",
    )

    @field_validator("header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER.match(value):
            raise ValueError(f"attribution.header {value!r} is not a valid header name")
        return value.lower()

    @field_validator("values")
    @classmethod
    def _values(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        for value in values:
            if not value or len(value) > 128 or not value.isprintable():
                raise ValueError(f"attribution value {value!r}: 1 to 128 printable characters")
            if value in RESERVED_ATTRIBUTION_VALUES:
                raise ValueError(f"attribution value {value!r} is reserved by the sidecar")
        return list(dict.fromkeys(values))


class BudgetConfig(Strict):
    """A spend budget of one attribution value: per day or per month (30 days), in USD."""

    usd_per_day: float | None = Field(default=None, gt=0.0, description="USD per day.")
    usd_per_month: float | None = Field(
        default=None, gt=0.0, description="USD per month (30 days)."
    )

    @model_validator(mode="after")
    def _one_period(self) -> BudgetConfig:
        if (self.usd_per_day is None) == (self.usd_per_month is None):
            raise ValueError("a budget sets exactly one of usd_per_day and usd_per_month")
        return self
