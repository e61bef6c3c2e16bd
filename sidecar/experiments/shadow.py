"""Shadow mode: a background copy of the app's request to a candidate, and the pair it forms.

The app gets the control's answer as if no experiment ran: the copy starts as a separate
task once the control call is on its way, is consumed to the end (same streaming mode, so
time to first chunk is comparable) and only ever reaches the pipeline. Each arm has a
concurrency and a rate limit; a call over either is not copied. When both halves of a
pair have finished, `PairBook` hands them over for the paired deltas.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

from multidict import CIMultiDict

from sidecar.config.experiments import SHADOW
from sidecar.experiments.decision import Decision, ShadowCopy
from sidecar.forward.exchange import DISCARD, Call, Exchange
from sidecar.forward.live import LiveRouting
from sidecar.http1.client import UpstreamPool
from sidecar.pipeline import Needs
from sidecar.record import (
    NEED_AUDIT,
    NEED_LOGPROBS,
    NEED_OUTPUT,
    OK,
    CallRecord,
    options_for,
)

# Headers never copied to a shadow call: the provider could answer it from the control's
# idempotent result, or the shadow's span would claim the control's place in the trace.
_NOT_SHADOWED = ("Idempotency-Key", "traceparent", "tracestate")
# A shadow copy always keeps its output (for the pair's comparison). It asks the candidate
# what the app asked (no logprobs the app did not ask for) and is never audited.
_SHADOW_NEEDS = NEED_OUTPUT
_NEVER_FOR_SHADOWS = NEED_LOGPROBS | NEED_AUDIT


class ShadowRunner:
    """Runs shadow copies as background tasks, each through the exchange to `DISCARD`."""

    def __init__(self, exchange: Exchange, routing: LiveRouting, needs: Needs) -> None:
        self._exchange = exchange
        self._routing = routing
        self._needs = needs
        self._tasks: set[asyncio.Task[None]] = set()

    def launch(self, decision: Decision, control: Call, record: CallRecord) -> None:
        """Start the decision's shadow copies (each holds a place in its arm's limiter)."""
        pools = self._routing.current.pools
        for copy in decision.shadows:
            pool = pools.get(copy.outbound.route.upstream.name)
            if pool is None:  # a reload removed the upstream since the decision
                copy.limiter.release()
                continue
            headers = control.headers.copy()
            for name in _NOT_SHADOWED:
                headers.popall(name, None)
            task = asyncio.get_running_loop().create_task(
                self._run(decision.experiment, copy, control, record, headers, pool)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel the shadow calls still running (at shutdown) and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        """Shadow calls running now."""
        return len(self._tasks)

    async def _run(
        self,
        experiment: str,
        copy: ShadowCopy,
        control: Call,
        primary: CallRecord,
        headers: CIMultiDict[str],
        pool: UpstreamPool,
    ) -> None:
        try:
            outbound = copy.outbound
            needs = self._needs(outbound.info, outbound.json)
            options = options_for((needs | _SHADOW_NEEDS) & ~_NEVER_FOR_SHADOWS)
            call = Call.prepare(outbound, headers, options)
            parent = None
            if primary.trace_id is not None and primary.span_id is not None:
                # The shadow's span is a child of the control call's span, in the same trace.
                parent = (primary.trace_id, primary.span_id, primary.trace_sampled)
            record = self._exchange.open(
                call,
                time.perf_counter(),
                time.time_ns(),
                experiment=experiment,
                variant=copy.arm.variant,
                pair_id=primary.pair_id,
                trace_parent=parent,
            )
            await self._exchange.run(call, record, DISCARD, pool, None)
        finally:
            copy.limiter.release()


@dataclass(frozen=True, slots=True)
class Half:
    """What a pair compares of one call."""

    ok: bool
    duration: float
    time_to_first_chunk: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    output_digest: bytes
    output_chars: int

    @classmethod
    def of(cls, record: CallRecord) -> Half:
        """The half of a finished (and enriched) call."""
        text = record.output_text or ""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(text.encode())
        for call in record.output_tool_calls:
            digest.update(b"\0" + call.encode())
        return cls(
            ok=record.outcome == OK,
            duration=record.duration,
            time_to_first_chunk=record.time_to_first_chunk,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            cost_usd=record.cost_usd,
            output_digest=digest.digest(),
            output_chars=len(text),
        )


Pair = tuple[str, Half, Half]  # (shadow variant, control half, shadow half)


class PairBook:
    """Halves waiting for their other half, by pair id; bounded (oldest forgotten first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._controls: OrderedDict[str, Half] = OrderedDict()
        self._shadows: OrderedDict[str, dict[str, Half]] = OrderedDict()

    def add(self, record: CallRecord) -> list[Pair]:
        """Add a finished call of a pair; the pairs it completes."""
        half = Half.of(record)
        pair_id = record.pair_id
        if not record.variant.startswith(SHADOW):
            self._controls[pair_id] = half
            while len(self._controls) > self.capacity:
                self._controls.popitem(last=False)
            waiting = self._shadows.pop(pair_id, {})
            return [(variant, half, shadow) for variant, shadow in waiting.items()]
        control = self._controls.get(pair_id)
        if control is None:
            self._shadows.setdefault(pair_id, {})[record.variant] = half
            while len(self._shadows) > self.capacity:
                self._shadows.popitem(last=False)
            return []
        return [(record.variant, control, half)]
