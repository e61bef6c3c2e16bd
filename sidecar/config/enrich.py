"""Config sections of the enrichment stages: cost, confidence, retries, repeatability."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sidecar.config.strict import Strict


class ModelPriceOverride(Strict):
    """An operator's price for one model, in USD per million tokens."""

    input: float = Field(ge=0, description="Uncached input tokens.")
    output: float = Field(ge=0, description="Output tokens (reasoning included).")
    cache_read: float | None = Field(
        default=None, ge=0, description="Input tokens read from the prompt cache; default: input."
    )
    cache_write: float | None = Field(
        default=None, ge=0, description="Input tokens written to the prompt cache; default: input."
    )


class CostConfig(Strict):
    """Pricing with genai-prices' bundled data (never fetched at run time) plus overrides."""

    enabled: bool = Field(default=True, description="Price every call.")
    overrides: dict[str, ModelPriceOverride] = Field(
        default_factory=dict,
        description="Prices by model name (response model, else request model); they win "
        "over genai-prices and price self-hosted models.",
    )
    response_header: bool = Field(
        default=True, description="Send x-model-sidecar-cost-usd on non-streaming responses."
    )


class ConfidenceConfig(Strict):
    """How sure the model was: from token logprobs, a JSON output field, or a header."""

    enabled: bool = Field(default=True, description="Measure the confidence of every call.")
    source: Literal["logprobs", "json_field", "header"] = Field(
        default="logprobs",
        description="Token logprobs (when the response has them), a number in the model's "
        "JSON output, or an upstream response header.",
    )
    json_field: str = Field(
        default="confidence",
        description="Dotted path of a number in the model's JSON output (source json_field).",
    )
    header: str = Field(
        default="x-confidence",
        description="Upstream response header holding a number (source header).",
    )
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="Below this, a call counts as low confidence."
    )
    request_logprobs: bool = Field(
        default=False,
        description="Ask OpenAI chat completions upstreams for logprobs when the app did not, "
        "and remove them from the app's response.",
    )
    response_headers: bool = Field(
        default=True,
        description="Send x-model-sidecar-confidence (and -low-confidence) on non-streaming "
        "responses.",
    )


class RepeatabilityConfig(Strict):
    """Fingerprints of temperature-0 / fixed-seed calls, to count same vs different outputs."""

    enabled: bool = Field(
        default=True,
        description="Count same vs different outputs of repeated temperature-0 or "
        "fixed-seed calls.",
    )
    max_fingerprints: int = Field(
        default=10000, gt=0, description="Request fingerprints remembered (LRU; hashes only)."
    )
