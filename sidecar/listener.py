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


class HeadTimeoutServer(web.Server):
    """Closes a connection whose next request head does not arrive within `head_timeout` seconds.

    aiohttp waits for a request head forever; a slow or stuck client would hold its
    connection (and a file descriptor) open indefinitely.
    """

    def __init__(self, handler: Handler, *, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(self._handle, **kwargs)
        self._inner = handler
        self._head_timeout = head_timeout
        self._timers: dict[RequestHandler, asyncio.TimerHandle] = {}

    def __call__(self) -> RequestHandler:
        protocol = super().__call__()
        self._arm(protocol)
        return protocol

    def _arm(self, protocol: RequestHandler) -> None:
        loop = asyncio.get_running_loop()
        self._timers[protocol] = loop.call_later(self._head_timeout, self._expire, protocol)

    def _expire(self, protocol: RequestHandler) -> None:
        self._timers.pop(protocol, None)
        transport = protocol.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        protocol = request.protocol
        timer = self._timers.pop(protocol, None)
        if timer is not None:
            timer.cancel()
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
