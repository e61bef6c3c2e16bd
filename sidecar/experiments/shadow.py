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
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from multidict import CIMultiDict

from sidecar import record as outcomes
from sidecar.config.experiments import SHADOW
from sidecar.experiments.assignment import Arm, Experiment
from sidecar.forward.inject import inject_fields
from sidecar.forward.routing import Route, Upstream
from sidecar.forward.tracecontext import start_trace
from sidecar.http1.client import UpstreamError, UpstreamPayloadError, UpstreamPool
from sidecar.pipeline import Pipeline
from sidecar.record import CallRecord, RequestInfo

CONCURRENCY = "concurrency"
RATE = "rate"


class ArmLimiter:
    """At most `concurrency` shadow calls at once and `per_second` started per second."""

    def __init__(
        self, concurrency: int, per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.concurrency = concurrency
        self.per_second = per_second
        self.in_flight = 0
        self._capacity = max(1.0, per_second)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()

    def acquire(self) -> str | None:
        """None when a shadow call may start (and is counted), else why not."""
        if self.in_flight >= self.concurrency:
            return CONCURRENCY
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens < 1.0:
            return RATE
        self._tokens -= 1.0
        self.in_flight += 1
        return None

    def release(self) -> None:
        """A shadow call ended."""
        self.in_flight -= 1


@dataclass(frozen=True, slots=True)
class ShadowRequest:
    """What a shadow call sends: the candidate's request as the app made it, minus trace ids."""

    method: str
    route: Route
    query: str
    headers: CIMultiDict[str]
    body: bytes
    info: RequestInfo


class ShadowRunner:
    """Starts shadow calls as background tasks and hands their records to the pipeline."""

    def __init__(
        self,
        pipeline: Pipeline,
        pools: Callable[[], Mapping[str, UpstreamPool]],
        *,
        inject_usage: bool,
        propagate_traceparent: bool,
    ) -> None:
        self.pipeline = pipeline
        self._pools = pools
        self._inject_usage = inject_usage
        self._propagate = propagate_traceparent
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random()

    def start(
        self,
        experiment: Experiment,
        arm: Arm,
        limiter: ArmLimiter,
        primary: CallRecord,
        request: ShadowRequest,
    ) -> None:
        """Run one shadow call in the background (the limiter was acquired by the caller)."""
        task = asyncio.get_running_loop().create_task(
            self._run(experiment, arm, limiter, primary, request)
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
        experiment: Experiment,
        arm: Arm,
        limiter: ArmLimiter,
        primary: CallRecord,
        request: ShadowRequest,
    ) -> None:
        route = request.route
        upstream = route.upstream
        record = _shadow_record(experiment, arm, primary, route)
        record.request = replace(request.info)
        headers = request.headers
        body, injected = inject_fields(
            route.protocol, record, request.body, self._inject_usage, logprobs=False
        )
        if injected.any:
            headers["Accept-Encoding"] = "identity"
        if primary.trace_id is not None and primary.span_id is not None:
            # The shadow's span is a child of the control call's span, in the same trace.
            parent = (primary.trace_id, primary.span_id, primary.trace_sampled)
            start_trace(headers, record, self._rng, propagate=self._propagate, parent=parent)
        self.pipeline.started(record)
        try:
            pool = self._pools()[upstream.name]
            await _exchange(pool, request, upstream, headers, body, record)
        except asyncio.CancelledError:
            record.outcome = outcomes.CLIENT_CANCELLED
            raise
        finally:
            limiter.release()
            record.end = time.perf_counter()
            self.pipeline.submit(record)


def _shadow_record(
    experiment: Experiment, arm: Arm, primary: CallRecord, route: Route
) -> CallRecord:
    upstream = route.upstream
    record = CallRecord(
        upstream=upstream.name,
        protocol=route.protocol.name,
        provider_name=route.protocol.provider_name,
        method=primary.method,
        path=route.path,
        server_address=upstream.host,
        server_port=upstream.port,
        start_unix_ns=time.time_ns(),
        received=time.perf_counter(),
        capture_content=primary.capture_content,
    )
    record.experiment = experiment.name
    record.variant = arm.variant
    record.pair_id = primary.pair_id
    record.output_for_enrichment = True
    return record


async def _exchange(
    pool: UpstreamPool,
    request: ShadowRequest,
    upstream: Upstream,
    headers: CIMultiDict[str],
    body: bytes,
    record: CallRecord,
) -> None:
    """Send the shadow request and read its answer to the end, parsing it on the way."""
    target = upstream.target_for(request.route.path, request.query)
    try:
        response = await pool.request(request.method, target, headers, body)
        try:
            now = time.perf_counter()
            record.upstream_headers = now
            record.http_status = response.status
            if response.status >= 400:
                record.outcome = outcomes.UPSTREAM_ERROR
            parser = request.route.protocol.response_parser(
                record,
                response.headers.get("Content-Type", ""),
                response.headers.get("Content-Encoding", ""),
            )
            try:
                while data := await response.read_chunk():
                    record.response_bytes += len(data)
                    parser.feed(data, time.perf_counter())
            finally:
                parser.finish()
        finally:
            response.release()
        if record.outcome == outcomes.OK and not parser.complete:
            record.outcome = outcomes.STREAM_INTERRUPTED
    except TimeoutError:
        record.outcome = outcomes.TIMEOUT
    except UpstreamPayloadError:
        record.outcome = outcomes.STREAM_INTERRUPTED
    except (UpstreamError, OSError):
        started = record.upstream_headers is not None
        record.outcome = outcomes.STREAM_INTERRUPTED if started else outcomes.CONNECTION_ERROR


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
            ok=record.outcome == outcomes.OK,
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
