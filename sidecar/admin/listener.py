"""The admin listener: /metrics, /healthz, /readyz, /status, the comparison page (`/`,
`/api/summary`, sidecar/ui/), and the control endpoints.

It reads the running sidecar only through the callables it is given, so it holds no state of
its own and never reaches into the parts it reports on. Every request passes
`ControlAuth.refusal` first (sidecar/admin/auth.py), before routing: control endpoints added
here are protected by construction.

It runs on the proxy's own HTTP/1.1 server (sidecar/http1/) rather than aiohttp: the same
few routes, and a sidecar that does not import aiohttp's server and client at all is ~20 MB
smaller and starts faster (issue #23).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from multidict import CIMultiDict

from sidecar.admin.auth import ControlAuth
from sidecar.admin.reply import Reply, error_reply, json_reply, text_reply
from sidecar.experiments.runtime import Experiments
from sidecar.http1.listener import IncomingRequest, ProxyServer, Responder
from sidecar.ui.service import ComparisonPage
from sidecar.ui.summary import WindowError

log = logging.getLogger("sidecar.admin")

# Admin requests carry no body worth reading; anything larger is refused (413).
MAX_BODY_BYTES = 64 * 1024
# An idle keep-alive connection (a scraper's) or a slow head is closed after this long.
CLIENT_TIMEOUT_SECONDS = 75.0
# At shutdown, how long a request under way (a scrape) may take to finish.
STOP_GRACE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class AdminRequest:
    """What a handler reads: the decoded path parameters, the query and the headers."""

    method: str
    path: str
    match_info: dict[str, str]
    query: dict[str, str]
    headers: CIMultiDict[str]


AdminHandler = Callable[[AdminRequest], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Route:
    """A method and a path pattern; `{name}` matches one non-empty path segment."""

    method: str
    pattern: str
    handler: AdminHandler

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters when `segments` (a path split at "/") fit the pattern."""
        expected = self.pattern.split("/")
        if len(expected) != len(segments):
            return None
        params: dict[str, str] = {}
        for want, got in zip(expected, segments, strict=True):
            if want.startswith("{") and want.endswith("}"):
                if not got:
                    return None
                params[want[1:-1]] = unquote(got)
            elif want != got:
                return None
        return params


class AdminListener:
    """The admin HTTP listener: start it on an address, stop it at shutdown."""

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
        # One line per route; GET routes answer HEAD too.
        routes = [
            Route("GET", "/metrics", self._metrics),
            Route("GET", "/healthz", self._healthz),
            Route("GET", "/readyz", self._readyz),
            Route("GET", "/status", self._status),
            Route("POST", "/experiments/{name}/resume", self._resume),
            Route("POST", "/experiments/{name}/pause", self._pause),
            Route("POST", "/experiments/{name}/promote", self._promote),
            Route("POST", "/experiments/{name}/abort", self._abort),
        ]
        if page is not None:
            routes.append(Route("GET", "/", self._index))
            routes.append(Route("GET", "/api/summary", self._summary))
        self._routes = routes
        self._server = ProxyServer(
            self._handle, max_body_bytes=MAX_BODY_BYTES, client_timeout=CLIENT_TIMEOUT_SECONDS
        )

    @property
    def addresses(self) -> list[Any]:
        """The bound (host, port) addresses; empty before start()."""
        return self._server.addresses

    async def start(self, host: str, port: int) -> None:
        """Bind and serve."""
        await self._server.start(host, port)

    async def stop(self) -> None:
        """Stop serving and close open connections."""
        await self._server.shutdown(STOP_GRACE_SECONDS)

    async def _handle(self, request: IncomingRequest, responder: Responder) -> None:
        try:
            reply = await self.reply(request, responder.peer_host)
        except Exception:
            log.exception("unexpected error in the admin listener")
            reply = error_reply(500, "model-sidecar: internal error")
        responder.send(reply.status, "", reply.headers, reply.body)

    async def reply(self, request: IncomingRequest, peer: str | None) -> Reply:
        """The answer to one request: auth first, then the body limits, then the route."""
        path, _, query = request.target.partition("?")
        refusal = self._auth.refusal(request.method, path, request.headers, peer)
        if refusal is not None:
            return refusal
        if request.problem == 413:
            return error_reply(413, f"request body over {MAX_BODY_BYTES} bytes")
        if request.problem is not None:
            return error_reply(request.problem, "request body not received in time")
        method = "GET" if request.method == "HEAD" else request.method
        segments = path.split("/")
        allowed: list[str] = []
        for route in self._routes:
            params = route.match(segments)
            if params is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            admin_request = AdminRequest(
                request.method, path, params, dict(parse_qsl(query)), request.headers
            )
            return await route.handler(admin_request)
        if allowed:
            methods = set(allowed) | ({"HEAD"} if "GET" in allowed else set())
            allow = ("Allow", ", ".join(sorted(methods)))
            return error_reply(405, f"{request.method} is not allowed here", allow)
        return error_reply(404, f"no admin endpoint {path}")

    async def _metrics(self, request: AdminRequest) -> Reply:
        body, content_type = self._render_metrics(request.headers.get("Accept", ""))
        return Reply(200, body, (("Content-Type", content_type),))

    async def _healthz(self, request: AdminRequest) -> Reply:
        return text_reply("ok\n")

    async def _readyz(self, request: AdminRequest) -> Reply:
        if self._draining():
            return text_reply("draining\n", 503)
        return text_reply("ready\n")

    async def _status(self, request: AdminRequest) -> Reply:
        return json_reply(self._status_of())

    async def _index(self, request: AdminRequest) -> Reply:
        assert self._page is not None
        page = self._page.page
        return Reply(200, page.body, tuple(page.headers.items()))

    async def _summary(self, request: AdminRequest) -> Reply:
        assert self._page is not None
        try:
            document = await self._page.document(request.query.get("window"))
        except WindowError as exc:
            return error_reply(400, str(exc))
        return json_reply(document, 200, ("Cache-Control", "no-store"))

    async def _resume(self, request: AdminRequest) -> Reply:
        reply = self._experiments.resume(request.match_info["name"])
        return json_reply(reply.body, reply.status)

    async def _pause(self, request: AdminRequest) -> Reply:
        reply = self._experiments.pause(request.match_info["name"])
        return json_reply(reply.body, reply.status)

    async def _promote(self, request: AdminRequest) -> Reply:
        reply = self._experiments.promote(request.match_info["name"])
        return json_reply(reply.body, reply.status)

    async def _abort(self, request: AdminRequest) -> Reply:
        reply = self._experiments.abort(request.match_info["name"])
        return json_reply(reply.body, reply.status)
