"""The pool's bookkeeping: how many connections are open, which are idle, who waits for one."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

C = TypeVar("C")


class PoolClosed(Exception):
    """The pool was closed while waiting for a connection slot."""


class ConnectionSlots(Generic[C]):
    """Counts open connections, keeps idle ones (LIFO) and queues waiters (FIFO) at the cap.

    A connection idle for `idle_timeout` is forgotten (its slot freed) and handed to `expired`,
    which closes it.
    """

    __slots__ = (
        "_count",
        "_expired",
        "_idle",
        "_idle_timeout",
        "_loop",
        "_max",
        "_sweep",
        "_waiters",
    )

    def __init__(
        self, max_connections: int, idle_timeout: float, expired: Callable[[C], None]
    ) -> None:
        self._max = max_connections
        self._idle_timeout = idle_timeout
        self._expired = expired
        self._count = 0
        self._idle: list[tuple[float, C]] = []
        self._waiters: deque[asyncio.Future[C | None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def count(self) -> int:
        """Open (or connecting) connections, idle ones included."""
        return self._count

    @property
    def idle_count(self) -> int:
        """Idle connections ready for reuse."""
        return len(self._idle)

    def take(self) -> C | None:
        """The most recently released idle connection, if any."""
        return self._idle.pop()[1] if self._idle else None

    def reserve(self) -> bool:
        """Reserve a slot for a new connection; False at the cap."""
        if self._max <= 0 or self._count < self._max:
            self._count += 1
            return True
        return False

    async def wait(self) -> C | None:
        """Wait (FIFO) for a released connection, or None: a freed slot is reserved for us."""
        fut: asyncio.Future[C | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                conn = fut.result()
                if conn is None:
                    self.free()
                else:
                    self.put(conn)
            raise

    def put(self, conn: C) -> None:
        """Give back a reusable connection: to the first waiter, else to the idle list."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._idle.append((loop.time(), conn))
        if self._sweep is None:
            self._sweep = loop.call_later(self._idle_timeout, self._expire)

    def free(self) -> None:
        """A connection closed (or failed to open): its slot goes to the first waiter."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._count -= 1

    def remove_idle(self, conn: C) -> bool:
        """Forget an idle connection the peer closed (frees its slot); False if it was not idle."""
        for i, (_, idle) in enumerate(self._idle):
            if idle is conn:
                del self._idle[i]
                self.free()
                return True
        return False

    def close(self) -> list[C]:
        """Fail the waiters, stop the sweep; the idle connections (forgotten) are returned."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(PoolClosed())
        idle = [conn for _, conn in self._idle]
        self._idle.clear()
        self._count -= len(idle)
        return idle

    def _expire(self) -> None:
        """The sweep: forget connections idle for idle_timeout, re-arm for the oldest one left."""
        self._sweep = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        idle = self._idle
        cutoff = now - self._idle_timeout
        n = 0
        while n < len(idle) and idle[n][0] <= cutoff:
            n += 1
        expired = idle[:n]
        del idle[:n]
        for _, conn in expired:
            self.free()
            self._expired(conn)
        if idle:
            delay = max(idle[0][0] + self._idle_timeout - now, 0.001)
            self._sweep = loop.call_later(delay, self._expire)
