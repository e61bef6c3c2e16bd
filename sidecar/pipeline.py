"""Hands each finished CallRecord to the enrich stages and then to every sink, off the call path."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from sidecar.record import CallRecord

log = logging.getLogger("sidecar.pipeline")

Enricher = Callable[[CallRecord], None]


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
    """A bounded queue of finished calls, drained by one task that runs enrichers then sinks."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        enrichers: Sequence[Enricher] = (),
        queue_size: int = 10000,
    ) -> None:
        self.sinks = list(sinks)
        self.enrichers = list(enrichers)
        self.queue_size = queue_size
        self._queue: deque[CallRecord] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.dropped_total = 0

    def start(self) -> None:
        """Start draining the queue on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

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
        self._wakeup.set()

    def process(self, record: CallRecord) -> None:
        """Run the enrichers and then every sink on one record; failures stay contained."""
        for enrich in self.enrichers:
            try:
                enrich(record)
            except Exception:
                log.exception("enricher %s failed", getattr(enrich, "__name__", enrich))
        for sink in self.sinks:
            try:
                sink.call_finished(record)
            except Exception:
                log.exception("sink %s failed on call_finished", sink.name)

    async def _drain(self) -> None:
        queue = self._queue
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while queue:
                self.process(queue.popleft())
                # Yield now and then so a burst never starves the forwarding path.
                if len(queue) % 64 == 0:
                    await asyncio.sleep(0)
            if self._closing:
                return

    async def close(self) -> None:
        """Drain what is queued, stop the task, and close every sink."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
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
