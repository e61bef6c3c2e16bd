"""The proxy listener: HTTP/1.1 connections parsed with httptools, one handler task per request."""

from __future__ import annotations

import asyncio
import logging
import socket

from sidecar.http1.connection import ServerConnection
from sidecar.http1.responder import Handler, IncomingRequest, Responder

__all__ = ["Handler", "IncomingRequest", "ProxyServer", "Responder"]

log = logging.getLogger("sidecar.listener")

# The sweep runs this many times per client timeout (at most once a second), so a late
# connection is dealt with between `client_timeout` and 1.25 times `client_timeout`.
SWEEPS_PER_TIMEOUT = 4
# How long shutdown waits for cancelled handlers to unwind.
CANCEL_GRACE_SECONDS = 1.0


def _sweep_interval(client_timeout: float) -> float:
    return min(1.0, client_timeout / SWEEPS_PER_TIMEOUT)


# On shutdown, how long a connection accepted just before may take to deliver its first
# request (at most a quarter of the shutdown grace), and how often that is checked.
FIRST_REQUEST_GRACE_SECONDS = 0.5
FIRST_REQUEST_POLL_SECONDS = 0.02


class ProxyServer:
    """Serves the proxy listener: every complete request goes to `handler`.

    Connections waiting for a request head or body have a deadline; one periodic sweep
    (running only while some connection has one) deals with the late: no timer per request.
    """

    _loop: asyncio.AbstractEventLoop

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_bytes: int,
        client_timeout: float,
        max_head_bytes: int = 65536,
    ) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.max_head_bytes = max_head_bytes
        self.client_timeout = client_timeout
        self.draining = False
        self._tasks: set[asyncio.Task[None]] = set()  # running handlers
        self._sweep_every = _sweep_interval(client_timeout)
        self._connections: set[ServerConnection] = set()
        self._deadlines: dict[ServerConnection, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._servers: list[asyncio.Server] = []
        self._drained: asyncio.Future[None] | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (port 0 picks a free port)."""
        loop = self._loop = asyncio.get_running_loop()
        # The kernel's own cap (net.core.somaxconn) rather than 128: a burst of connects (an
        # app opening a thousand streams at once) otherwise overflows the accept queue, and a
        # dropped SYN is retried only a second later (issue #23: 1,866 listen drops at 1,000
        # streams with 128).
        server = await loop.create_server(
            lambda: ServerConnection(self, loop),
            host,
            port,
            reuse_address=True,
            backlog=socket.SOMAXCONN,
        )
        self._servers.append(server)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (host, port) of every bound socket."""
        bound = []
        for server in self._servers:
            for sock in server.sockets:
                name = sock.getsockname()
                bound.append((str(name[0]), int(name[1])))
        return bound

    @property
    def in_flight(self) -> int:
        """Requests whose handler is running."""
        return len(self._tasks)

    def set_limits(self, *, max_body_bytes: int, client_timeout: float) -> None:
        """Use new limits from now on (deadlines already set stay)."""
        self.max_body_bytes = max_body_bytes
        self.client_timeout = client_timeout
        self._sweep_every = _sweep_interval(client_timeout)

    def stop_accepting(self) -> None:
        """Close the listening sockets; open connections stay."""
        for server in self._servers:
            server.close()

    async def shutdown(self, timeout: float) -> int:
        """Stop accepting, close idle connections, let requests finish within `timeout`, abort.

        Returns how many requests were still running when `timeout` ran out (then cancelled).
        """
        loop = self._loop
        started = loop.time()
        self.stop_accepting()
        self.draining = True
        # A connection accepted before the drain whose first request is still on its way
        # (nothing, or only part of a head, received) gets a moment for it to arrive: its
        # client already sent or is sending it, and closing now would drop a valid call.
        # Idle keep-alive connections close at once.
        arriving = [conn for conn in self._connections if conn.awaiting_first_request]
        for conn in list(self._connections):
            if not conn.awaiting_first_request:
                conn.close_if_idle()
        if arriving:
            grace_end = started + min(FIRST_REQUEST_GRACE_SECONDS, timeout / 4)
            while loop.time() < grace_end and any(
                conn.awaiting_first_request for conn in arriving if conn in self._connections
            ):
                await asyncio.sleep(FIRST_REQUEST_POLL_SECONDS)
            for conn in arriving:
                conn.close_if_idle()
        if self._connections or self._tasks:
            drained = self._drained = loop.create_future()
            await asyncio.wait([drained], timeout=max(0.0, started + timeout - loop.time()))
            self._drained = None
        for conn in list(self._connections):
            conn.kill()
        pending = [task for task in self._tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=CANCEL_GRACE_SECONDS)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._deadlines.clear()
        for server in self._servers:
            await server.wait_closed()
        return len(pending)

    # Called by connections.

    def connection_opened(self, conn: ServerConnection) -> None:
        """A new connection waits for its first head (or is closed when draining)."""
        self._connections.add(conn)
        if self.draining:
            conn.close()
        else:
            self.arm(conn)

    def connection_closed(self, conn: ServerConnection) -> None:
        """Forget a lost connection."""
        self._connections.discard(conn)
        self._deadlines.pop(conn, None)
        if self._drained is not None:
            self._check_drained()

    def request_started(self, task: asyncio.Task[None]) -> None:
        """A handler runs in `task` (shutdown waits for it, then cancels it)."""
        self._tasks.add(task)

    def request_done(self, task: asyncio.Task[None] | None) -> None:
        """A handler finished."""
        if task is not None:
            self._tasks.discard(task)
        if self._drained is not None:
            self._check_drained()

    def arm(self, conn: ServerConnection) -> None:
        """Give `conn` a deadline `client_timeout` from now."""
        loop = self._loop
        self._deadlines[conn] = loop.time() + self.client_timeout
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep)

    def disarm(self, conn: ServerConnection) -> None:
        """`conn` has no deadline."""
        self._deadlines.pop(conn, None)

    def _sweep(self) -> None:
        """Deal with every connection past its deadline; run again while any has one."""
        deadlines = self._deadlines
        now = self._loop.time()
        for conn in [c for c, deadline in deadlines.items() if deadline <= now]:
            deadlines.pop(conn, None)
            try:
                conn.time_out()
            except Exception:
                log.exception("unexpected error in the proxy listener")
                conn.abort()
        self._sweeper = self._loop.call_later(self._sweep_every, self._sweep) if deadlines else None

    def _check_drained(self) -> None:
        drained = self._drained
        if drained is not None and not drained.done() and not self._connections and not self._tasks:
            drained.set_result(None)
