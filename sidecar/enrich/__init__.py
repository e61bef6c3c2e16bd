"""The enrich stages: cost, confidence, client retries and repeatability of each call, and
`ForgetOutput`, which keeps the output the stages asked for from reaching the sinks.

`Enrichment` builds them once from the config (the app puts them in the pipeline's order).
A whole (non-streaming) body gets its cost and confidence as response headers before the
app has it: the exchange calls `response_headers`, which runs those two stages early; when
the pipeline runs them, they find their values known.
"""

from __future__ import annotations

from typing import Any

from sidecar.config.models import SidecarConfig
from sidecar.enrich.confidence import ConfidenceEnricher, confidence_headers
from sidecar.enrich.cost import CostEnricher
from sidecar.enrich.repeatability import RepeatabilityEnricher
from sidecar.enrich.retries import ClientRetryEnricher
from sidecar.record import CallRecord, RequestInfo

COST_HEADER = "x-model-sidecar-cost-usd"


class Enrichment:
    """The configured enrich stages and the response headers they give whole bodies."""

    def __init__(self, config: SidecarConfig) -> None:
        self.cost = CostEnricher(config.cost) if config.cost.enabled else None
        self.confidence = (
            ConfidenceEnricher(config.confidence) if config.confidence.enabled else None
        )
        self.client_retries = ClientRetryEnricher(config.retries)
        self.repeatability = (
            RepeatabilityEnricher(config.repeatability) if config.repeatability.enabled else None
        )
        # The stages whose values whole bodies carry as response headers (None: no header).
        self._header_cost = self.cost if config.cost.response_header else None
        self._header_confidence = self.confidence if config.confidence.response_headers else None
        # The upstream response header the `header` confidence source reads, lowercase.
        self.reported_confidence_header = (
            config.confidence.header.lower()
            if self.confidence is not None and self.confidence.source == "header"
            else None
        )

    @property
    def sends_headers(self) -> bool:
        """Whether whole bodies get cost or confidence response headers."""
        return self._header_cost is not None or self._header_confidence is not None

    def response_headers(self, record: CallRecord) -> list[tuple[str, str]]:
        """Cost and confidence headers for a whole body, derived now (on the call path)."""
        headers: list[tuple[str, str]] = []
        if self._header_cost is not None:
            self._header_cost(record)
            if record.cost_usd is not None:
                headers.append((COST_HEADER, repr(record.cost_usd)))
        if self._header_confidence is not None:
            self._header_confidence(record)
            headers.extend(confidence_headers(record))
        return headers


class ForgetOutput:
    """The last stage when content capture is off: the output text and tool calls the
    stages asked the parsers to keep (`NEED_OUTPUT`) are dropped before the sinks see the
    call, so content leaves the sidecar only when the operator opted in."""

    name = "forget_output"

    def needs(self, request: RequestInfo, body: Any) -> int:
        """Nothing."""
        return 0

    def __call__(self, record: CallRecord) -> None:
        record.output_text = None
        record.output_tool_calls = []
