"""The admin listener: /metrics, /healthz, /readyz, /status, the comparison page (`/`,
`/api/summary`, sidecar/ui/), and the control endpoints.

It reads the running sidecar only through the callables it is given, so it holds no state of
its own and never reaches into the parts it reports on. Every request passes `ControlAuth`
first (sidecar/admin/auth.py): control endpoints added here are protected by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from sidecar.admin.auth import ControlAuth
from sidecar.experiments.runtime import Experiments
from sidecar.ui.service import ComparisonPage
from sidecar.ui.summary import WindowError


class AdminListener:
    """The admin HTTP listener (aiohttp): start it on an address, stop it at shutdown."""

    def __init__(
        self,
        *,
        metrics: Callable[[str], tuple[bytes, str]],
        draining: Callable[[], bool],
        status: Callable[[], dict[str, Any]],
        experiments: Experiments,
        token: Callable[[], str | None],
        page: ComparisonPage | None = None,
    ) -> None:
        self._auth = ControlAuth(token)
        self._render_metrics = metrics
        self._draining = draining
        self._status_of = status
        self._experiments = experiments
        self._page = page
        self._runner: web.AppRunner | None = None

    @property
    def addresses(self) -> list[Any]:
        """The bound (host, port, ...) addresses; empty before start()."""
        return list(self._runner.addresses) if self._runner is not None else []

    async def start(self, host: str, port: int) -> None:
        """Bind and serve."""
        self._runner = web.AppRunner(self._app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port, reuse_address=True).start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise

    async def stop(self) -> None:
        """Stop serving and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth.middleware])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/status", self._status)
        app.router.add_post("/experiments/{name}/resume", self._resume)
        app.router.add_post("/experiments/{name}/pause", self._pause)
        app.router.add_post("/experiments/{name}/promote", self._promote)
        app.router.add_post("/experiments/{name}/abort", self._abort)
        if self._page is not None:
            app.router.add_get("/", self._index)
            app.router.add_get("/api/summary", self._summary)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self._render_metrics(request.headers.get("Accept", ""))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._draining():
            return web.Response(status=503, text="draining\n")
        return web.Response(text="ready\n")

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self._status_of())

    async def _index(self, request: web.Request) -> web.Response:
        assert self._page is not None
        page = self._page.page
        return web.Response(body=page.body, headers=page.headers)

    async def _summary(self, request: web.Request) -> web.Response:
        assert self._page is not None
        try:
            document = await self._page.document(request.query.get("window"))
        except WindowError as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        response = web.json_response(document)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _resume(self, request: web.Request) -> web.Response:
        reply = self._experiments.resume(request.match_info["name"])
        return web.json_response(reply.body, status=reply.status)

    async def _pause(self, request: web.Request) -> web.Response:
        reply = self._experiments.pause(request.match_info["name"])
        return web.json_response(reply.body, status=reply.status)

    async def _promote(self, request: web.Request) -> web.Response:
        reply = self._experiments.promote(request.match_info["name"])
        return web.json_response(reply.body, status=reply.status)

    async def _abort(self, request: web.Request) -> web.Response:
        reply = self._experiments.abort(request.match_info["name"])
        return web.json_response(reply.body, status=reply.status)
