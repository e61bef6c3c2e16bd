"""The proxy listener's HTTP server: aiohttp's low-level server plus a request-head timeout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("sidecar.listener")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# The sweep runs this many times per head timeout (at most once a second), so a
# connection is closed between `head_timeout` and 1.25 times `head_timeout` after it went idle.
SWEEPS_PER_TIMEOUT = 4


class HeadTimeoutServer(web.Server):
    """Closes a connection whose next request head does not arrive within `head_timeout` seconds.

    aiohttp waits for a request head forever; a slow or stuck client would hold its
    connection (and a file descriptor) open indefinitely. Idle connections get a deadline,
    and one periodic sweep closes the late ones: no timer is created per request.
    """

    def __init__(self, handler: Handler, *, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(self._handle, **kwargs)
        self._inner = handler
        self._head_timeout = head_timeout
        self._sweep_every = min(1.0, head_timeout / SWEEPS_PER_TIMEOUT)
        self._deadlines: dict[RequestHandler, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def set_head_timeout(self, seconds: float) -> None:
        """Use a new head timeout from now on (connections already idle keep their deadline)."""
        self._head_timeout = seconds
        self._sweep_every = min(1.0, seconds / SWEEPS_PER_TIMEOUT)

    def __call__(self) -> RequestHandler:
        protocol = super().__call__()
        self._arm(protocol)
        return protocol

    def _arm(self, protocol: RequestHandler) -> None:
        loop = self._loop
        self._deadlines[protocol] = loop.time() + self._head_timeout
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep)

    def _sweep(self) -> None:
        """Close every connection whose deadline passed; run again while any is waiting."""
        deadlines = self._deadlines
        now = self._loop.time()
        for protocol in [p for p, deadline in deadlines.items() if deadline <= now]:
            del deadlines[protocol]
            transport = protocol.transport
            if transport is not None and not transport.is_closing():
                transport.close()
        self._sweeper = self._loop.call_later(self._sweep_every, self._sweep) if deadlines else None

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop the sweep, then aiohttp's own shutdown."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._deadlines.clear()
        await super().shutdown(timeout)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        protocol = request.protocol
        self._deadlines.pop(protocol, None)
        try:
            return await self._inner(request)
        except Exception:
            # A bug in the sidecar must not look like the provider's answer: a JSON 502.
            log.exception("unexpected error while forwarding", extra={"path": request.path})
            return web.json_response(
                {"error": {"message": "model-sidecar: internal error", "type": "sidecar_error"}},
                status=502,
            )
        finally:
            transport = protocol.transport
            if transport is not None and not transport.is_closing():
                self._arm(protocol)
