"""The enrich stages: cost, confidence, client retries and repeatability of each call.

`Enrichment` builds them from the config. The pipeline runs `enrichers` off the call
path; the proxy calls `prepare` before forwarding (which facts the parsers must keep)
and `response_headers` for whole (non-streaming) bodies, which get their cost and
confidence before the app does. Work done on the call path is not repeated later.
"""

from __future__ import annotations

from sidecar.config.models import SidecarConfig
from sidecar.enrich.confidence import ConfidenceEnricher, confidence_headers
from sidecar.enrich.cost import CostEnricher
from sidecar.enrich.repeatability import RepeatabilityEnricher, is_repeatable_request
from sidecar.enrich.retries import ClientRetryEnricher
from sidecar.pipeline import Enricher
from sidecar.record import CallRecord

COST_HEADER = "x-model-sidecar-cost-usd"


def forget_output(record: CallRecord) -> None:
    """Drop output kept only for enrichment: content leaves the sidecar only when captured."""
    if record.output_for_enrichment and not record.capture_content:
        record.output_text = None
        record.output_tool_calls = []


class Enrichment:
    """The configured enrich stages, and the hooks the forwarding path calls."""

    def __init__(self, config: SidecarConfig) -> None:
        self.cost = CostEnricher(config.cost) if config.cost.enabled else None
        self.confidence = (
            ConfidenceEnricher(config.confidence) if config.confidence.enabled else None
        )
        self.client_retries = ClientRetryEnricher(config.retries)
        self.repeatability = (
            RepeatabilityEnricher(config.repeatability) if config.repeatability.enabled else None
        )
        self.cost_header = config.cost.response_header and self.cost is not None
        self.confidence_headers = config.confidence.response_headers and self.confidence is not None
        self.request_logprobs = config.confidence.request_logprobs and (
            self.confidence is not None and self.confidence.source == "logprobs"
        )
        self._output_for_confidence = self.confidence is not None and self.confidence.needs_output
        self.confidence_header = (
            config.confidence.header.lower()
            if self.confidence is not None and self.confidence.source == "header"
            else None
        )

    @property
    def enrichers(self) -> list[Enricher]:
        """The pipeline's enrichers, in order; `forget_output` last."""
        stages: list[Enricher | None] = [
            self.cost,
            self.confidence,
            self.client_retries,
            self.repeatability,
            forget_output,
        ]
        return [stage for stage in stages if stage is not None]

    def prepare(self, record: CallRecord) -> None:
        """Before forwarding: tell the parsers whether to keep the output for enrichment."""
        if self._output_for_confidence or (
            self.repeatability is not None and is_repeatable_request(record.request)
        ):
            record.output_for_enrichment = True

    def response_headers(self, record: CallRecord) -> list[tuple[str, str]]:
        """Cost and confidence headers for a whole body, computed now (on the call path)."""
        headers: list[tuple[str, str]] = []
        if self.cost is not None:
            self.cost(record)
            if self.cost_header and record.cost_usd is not None:
                headers.append((COST_HEADER, repr(record.cost_usd)))
        if self.confidence is not None:
            self.confidence(record)
            if self.confidence_headers:
                headers.extend(confidence_headers(record))
        return headers
