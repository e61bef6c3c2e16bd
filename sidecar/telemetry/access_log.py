"""Access log sink: one JSON line per finished call, with no bodies and no credentials."""

from __future__ import annotations

import logging

from sidecar.record import CallRecord

log = logging.getLogger("sidecar.access")


class AccessLogSink:
    """Logs each finished call at INFO on the `sidecar.access` logger."""

    name = "access_log"

    def call_started(self, record: CallRecord) -> None:
        return None

    def call_finished(self, record: CallRecord) -> None:
        log.info(
            "call",
            extra={
                "upstream": record.upstream,
                "method": record.method,
                # The path never carries the query (where `?key=` credentials live).
                "path": record.path,
                "operation": record.request.operation,
                "request_model": record.request.request_model,
                "response_model": record.response_model,
                "status": record.http_status,
                "outcome": record.outcome,
                "duration_ms": round(record.duration * 1000, 3),
                "input_tokens": record.input_tokens,
                "output_tokens": record.output_tokens,
                "client_retry_count": record.client_retry_count,
            },
        )

    def dropped(self, record: CallRecord) -> None:
        return None

    def close(self) -> None:
        return None
