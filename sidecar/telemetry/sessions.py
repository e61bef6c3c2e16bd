"""Realtime sessions' own telemetry: the concurrent-sessions gauge as sessions open and close,
their duration, cost and `error` events, and the session span. A session's responses are
CallRecords and go through the pipeline like any call (their spans are the session span's
children); this is the session as a whole, which no CallRecord describes.

Like a pipeline sink it only reads what the relay and the event parser wrote, except for the
two values it derives itself, in order: the span's sampling decision when the session opens,
and the cost of its summed usage when it ends.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sidecar.enrich.cost import PriceBook, TokenUsage
from sidecar.record import SessionRecord
from sidecar.telemetry.conventions import (
    REALTIME_ERRORS,
    REALTIME_SESSION_COST,
    REALTIME_SESSION_DURATION,
    REALTIME_SESSIONS,
)
from sidecar.telemetry.registry import MetricRegistry

if TYPE_CHECKING:
    from sidecar.telemetry.tracing import TracingSink

log = logging.getLogger("sidecar.telemetry.sessions")

# Open sessions whose gauge labels are remembered (one entry per open session; a bound far
# above what one pod carries, so a leak could not grow without end).
MAX_OPEN_SESSIONS = 100_000


class SessionTelemetry:
    """Metrics and the span of every Realtime session."""

    def __init__(
        self, metrics: MetricRegistry, tracing: TracingSink | None, prices: PriceBook | None
    ) -> None:
        self._metrics = metrics
        self._tracing = tracing
        self._prices = prices
        # Open session → the gauge labels it was counted under (the model label is bounded:
        # the same name may resolve differently once the cap is reached).
        self._open: dict[int, tuple[str, str, str]] = {}

    def _labels(self, session: SessionRecord) -> tuple[str, str, str]:
        model = self._metrics.request_models.resolve(session.request_model)
        return (session.provider_name, model, session.upstream)

    def opened(self, session: SessionRecord) -> None:
        """The upstream upgraded the session: count it open; decide whether its span is kept."""
        if len(self._open) >= MAX_OPEN_SESSIONS:
            return
        labels = self._labels(session)
        self._open[id(session)] = labels
        self._metrics.inc(REALTIME_SESSIONS, labels)
        if self._tracing is not None and session.trace_id is not None:
            session.span_sampled = self._tracing.session_sampled(session)

    def error(self, session: SessionRecord, error_type: str) -> None:
        """The upstream sent an `error` event."""
        self._metrics.inc(REALTIME_ERRORS, (*self._labels(session), error_type))

    def finished(self, session: SessionRecord) -> None:
        """The session is over (or its handshake was refused): price it, record it, export
        its span. Never raises into the relay."""
        try:
            labels = self._open.pop(id(session), None)
            if labels is not None:
                self._metrics.inc(REALTIME_SESSIONS, labels, -1)
            else:
                labels = self._labels(session)
            self._price(session)
            self._metrics.observe(
                REALTIME_SESSION_DURATION, (*labels, session.error_type), session.duration
            )
            if session.cost_usd is not None:
                self._metrics.inc(REALTIME_SESSION_COST, labels, max(0.0, session.cost_usd))
            if self._tracing is not None:
                self._tracing.session_finished(session)
        except Exception:
            log.exception("recording a realtime session failed")

    def _price(self, session: SessionRecord) -> None:
        if self._prices is None or not session.responses:
            return
        usage = TokenUsage(
            input=session.input_tokens,
            output=session.output_tokens,
            cache_read=session.cache_read_tokens,
            audio_input=session.input_audio_tokens,
            audio_output=session.output_audio_tokens,
            audio_cache_read=session.cache_read_audio_tokens,
        )
        models = (session.response_model, session.request_model)
        cost = self._prices.price(session.provider_name, models, usage)
        if cost is not None:
            session.cost_usd = float(cost)
