"""Silent model changes: the response model and `system_fingerprint` a provider returns for
each requested model, and every change of them (a snapshot swapped behind an alias).

A sink: it reads finished calls only. Per (provider, requested model) it keeps the pairs
(response model, fingerprint) seen; the first is the baseline, a pair never seen before is a
change — counted once in `model_sidecar_model_change_total`, logged once with the old and new
values. The info-style gauge `model_sidecar_model_info` shows the pair of the latest answer.
A backend that alternates between pairs it already served (load balancing across a few
fingerprints) moves the gauge but is not counted again, so the alert does not flap. A call
without a fingerprint (an API that returns none) is compared on the response model alone.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import NamedTuple

from sidecar.record import OK, CallRecord
from sidecar.telemetry import conventions as defs
from sidecar.telemetry.registry import MetricRegistry

log = logging.getLogger("sidecar.model_changes")
# A label value the provider controls: kept short (real fingerprints are ~13 characters).
MAX_FINGERPRINT = 64
# Pairs remembered per requested model (oldest forgotten first).
MAX_SEEN = 16


class Served(NamedTuple):
    """What answered a requested model: the response model and the backend fingerprint."""

    model: str
    fingerprint: str


class ModelChanges:
    """The sink that tracks what serves each requested model."""

    name = "model_changes"

    def __init__(self, metrics: MetricRegistry) -> None:
        self._metrics = metrics
        # Bounded like the model labels: one entry per admitted requested model.
        self._current: dict[tuple[str, str], Served] = {}
        self._seen: dict[tuple[str, str], OrderedDict[Served, None]] = {}

    def call_started(self, record: CallRecord) -> None:
        """Nothing to do when a call starts."""

    def dropped(self, record: CallRecord) -> None:
        """A dropped call tells nothing about its model."""

    def close(self) -> None:
        """Nothing to flush."""

    def call_finished(self, record: CallRecord) -> None:
        """Compare what served this call with what served the last one for its model."""
        if record.outcome != OK or not record.response_model:
            return
        requested = self._metrics.request_models.resolve(record.request.request_model)
        if not requested or requested == "other":
            return
        key = (record.provider_name, requested)
        before = self._current.get(key)
        fingerprint = (record.system_fingerprint or "")[:MAX_FINGERPRINT]
        if before is not None and not fingerprint and before.model == record.response_model:
            return  # no fingerprint in this answer (e.g. another API): nothing to compare
        now = Served(record.response_model, fingerprint or (before.fingerprint if before else ""))
        if now == before:
            return
        self._current[key] = now
        response_model = self._metrics.response_models.resolve(now.model)
        seen = self._seen.setdefault(key, OrderedDict())
        new = now not in seen
        seen[now] = None
        seen.move_to_end(now)
        while len(seen) > MAX_SEEN:
            seen.popitem(last=False)
        if before is not None:
            old_model = self._metrics.response_models.resolve(before.model)
            self._metrics.remove(defs.MODEL_INFO, (requested, old_model, before.fingerprint))
        if before is not None and new:
            self._metrics.inc(defs.MODEL_CHANGES, (requested,))
            log.warning(
                "the provider changed what serves %s: %s (fingerprint %s) -> %s (fingerprint %s)",
                requested,
                before.model,
                before.fingerprint or "none",
                now.model,
                now.fingerprint or "none",
                extra={
                    "gen_ai_request_model": requested,
                    "old_response_model": before.model,
                    "new_response_model": now.model,
                    "old_system_fingerprint": before.fingerprint,
                    "new_system_fingerprint": now.fingerprint,
                },
            )
        elif before is None:
            self._metrics.declare(defs.MODEL_CHANGES, (requested,))
        self._metrics.set(defs.MODEL_INFO, (requested, response_model, now.fingerprint), 1)
