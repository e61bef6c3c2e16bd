"""The stages a finished call goes through, in their declared order, then every sink; off the
call path. Before a call is forwarded, `StageNeeds` asks the same stages what they will need
of it (see `sidecar.record.CallOptions`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sidecar.record import CallRecord, RequestInfo

log = logging.getLogger("sidecar.pipeline")

# What the stages need of a call before it is forwarded: `NEED_*` flags from its request
# info and its decoded body (`StageNeeds` is one).
Needs = Callable[[RequestInfo, Any], int]

# Records processed per event-loop iteration before the forwarding path gets its turn.
DRAIN_BATCH = 64


class Stage(Protocol):
    """One step after a call: it declares what it needs of a call before it is forwarded,
    then adds its derived values to the finished record. It must not raise into the proxy."""

    name: str

    def needs(self, request: RequestInfo, body: Any) -> int:
        """`NEED_*` flags for this call (`body` is the decoded request body); 0: nothing."""

    def __call__(self, record: CallRecord) -> None:
        """Add this stage's derived values to a finished record (runs off the call path)."""


class StageNeeds:
    """What every stage needs of one call, plus what is always needed (`always`: content
    capture, stream usage), combined into one int on the call path."""

    def __init__(self, stages: Sequence[Stage], always: int = 0) -> None:
        self.always = always
        # Bound once: looking a method up on each call would allocate it each time.
        self._hooks = tuple(stage.needs for stage in stages)

    def __call__(self, request: RequestInfo, body: Any) -> int:
        needs = self.always
        for hook in self._hooks:
            needs |= hook(request, body)
        return needs


class Sink(Protocol):
    """Something that exports finished calls. It must never raise into the proxy."""

    name: str

    def call_started(self, record: CallRecord) -> None:
        """A call was received (cheap; runs on the call path, e.g. for in-flight gauges)."""

    def call_finished(self, record: CallRecord) -> None:
        """A call is complete and enriched (runs off the call path)."""

    def dropped(self, record: CallRecord) -> None:
        """A finished call was dropped before any sink saw it (the queue was full)."""

    def close(self) -> None:
        """Flush and release resources at shutdown."""


class Pipeline:
    """A bounded queue of finished calls, drained on the event loop: the stages, then sinks."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        stages: Sequence[Callable[[CallRecord], None]] = (),
        queue_size: int = 10000,
    ) -> None:
        self.sinks = tuple(sinks)
        self.stages = tuple(stages)
        self.queue_size = queue_size
        self._queue: deque[CallRecord] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Whether a drain callback is scheduled on the loop (one at a time).
        self._scheduled = False
        self.dropped_total = 0

    def start(self) -> None:
        """Drain the queue on the running event loop from now on."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            if self._queue:
                self._schedule()

    def started(self, record: CallRecord) -> None:
        """Tell every sink a call has begun."""
        for sink in self.sinks:
            try:
                sink.call_started(record)
            except Exception:
                log.exception("sink %s failed on call_started", sink.name)

    def submit(self, record: CallRecord) -> None:
        """Queue a finished call; when the queue is full the call is counted as dropped."""
        if len(self._queue) >= self.queue_size:
            self.dropped_total += 1
            for sink in self.sinks:
                try:
                    sink.dropped(record)
                except Exception:
                    log.exception("sink %s failed on dropped", sink.name)
            return
        self._queue.append(record)
        if not self._scheduled and self._loop is not None:
            self._schedule()

    def _schedule(self) -> None:
        assert self._loop is not None
        self._scheduled = True
        self._loop.call_soon(self._drain)

    def process(self, record: CallRecord) -> None:
        """Run the stages in order and then every sink on one record; failures stay contained."""
        for stage in self.stages:
            try:
                stage(record)
            except Exception:
                log.exception("stage %s failed", getattr(stage, "name", stage))
        for sink in self.sinks:
            try:
                sink.call_finished(record)
            except Exception:
                log.exception("sink %s failed on call_finished", sink.name)

    def _drain(self) -> None:
        """Process up to a batch of queued records; the rest in a later loop iteration.

        A plain loop callback, not a task: waking a task per burst of calls costs more
        than the records' own processing. The batch limit keeps a burst from starving
        the forwarding path.
        """
        queue = self._queue
        for _ in range(min(len(queue), DRAIN_BATCH)):
            self.process(queue.popleft())
        if queue and self._loop is not None:
            self._loop.call_soon(self._drain)
        else:
            self._scheduled = False

    async def close(self) -> None:
        """Drain what is queued, stop draining, and close every sink."""
        self._loop = None  # a scheduled drain finds no loop and stops rescheduling
        while self._queue:
            self.process(self._queue.popleft())
        # A sink may wait on the network while it flushes: keep the event loop free.
        await asyncio.get_running_loop().run_in_executor(None, self._close_sinks)

    def _close_sinks(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                log.exception("sink %s failed to close", sink.name)
