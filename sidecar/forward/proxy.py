"""The app's calls, top to bottom: route, classify, decide, then the exchange.

What a call needs decided before it is forwarded is decided here, once: its route, what its
protocol learns of the request, its experiment arm, and what the stages need of it (one
frozen `CallOptions`). The exchange (exchange.py) then forwards it and writes its record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from multidict import CIMultiDict

from sidecar.forward.exchange import JSON_CONTENT_TYPE, Call, Exchange, Outbound
from sidecar.forward.facts import hash_idempotency_key
from sidecar.forward.headers import int_header, upstream_request_headers
from sidecar.forward.inject import NOTHING
from sidecar.forward.live import LiveRouting, Routing
from sidecar.forward.requestid import REQUEST_ID_HEADER, RequestIds
from sidecar.forward.retry import RetryPolicy
from sidecar.forward.routing import REFUSED_STATUS, Route, origin_path
from sidecar.forward.websocket import WebSocketForwarder
from sidecar.http1.listener import IncomingRequest, Responder
from sidecar.pipeline import Needs
from sidecar.protocols.decoding import decodable_encodings
from sidecar.protocols.jsonfields import parse_json_body
from sidecar.protocols.multipart import form_fields
from sidecar.record import (
    CLIENT_CANCELLED,
    NO_OPTIONS,
    UPSTREAM_ERROR,
    CallRecord,
    RequestInfo,
    options_for,
)

if TYPE_CHECKING:
    from sidecar.experiments.decision import Decision

# Bodies the listener refused before the handler ran, by status: the outcome and the message.
REJECTIONS = {
    413: (UPSTREAM_ERROR, "request body exceeds {limit} bytes"),
    408: (CLIENT_CANCELLED, "model-sidecar: request body not received in time"),
}
NOT_FOUND = (404, {"error": {"message": "not found"}}, ())

# One of the sidecar's own endpoints under /_sidecar/: (method, body) → (status, JSON body,
# extra headers).
OwnEndpoint = Callable[[str, bytes], tuple[int, dict[str, Any], tuple[tuple[str, str], ...]]]


class Assigner(Protocol):
    """What the proxy asks of experiments on the call path."""

    def assign(
        self, request_id: str, outbound: Outbound, headers: Mapping[str, str]
    ) -> Decision | None:
        """The call's arm (maybe another route and body) and what it needs; None: no change."""


class ShadowLauncher(Protocol):
    """Starts the shadow copies a decision asked for, once the control call is under way."""

    def launch(self, decision: Decision, control: Call, record: CallRecord) -> None:
        """Start the copies in the background."""


def request_fields(request: IncomingRequest) -> Any:
    """What a protocol classifies a request by: its JSON body, else the small text fields of a
    multipart form (an audio transcription's `model`), else None."""
    json = parse_json_body(request.body)
    if json is not None or not request.body:
        return json
    return form_fields(request.body, request.headers.get("Content-Type", ""))


class Proxy:
    """Forwards every request on the proxy listener through the exchange."""

    def __init__(
        self,
        routing: LiveRouting,
        exchange: Exchange,
        needs: Needs,
        assigner: Assigner,
        shadows: ShadowLauncher,
        own_endpoints: Mapping[str, OwnEndpoint],
        websockets: WebSocketForwarder | None = None,
    ) -> None:
        self._routing = routing
        self._exchange = exchange
        self._needs = needs
        self._assigner = assigner
        self._shadows = shadows
        self._own_endpoints = own_endpoints
        # WebSocket upgrades on the paths a protocol relays (None: every upgrade gets a 400).
        self._websockets = websockets
        self._encodings = decodable_encodings()
        self._request_ids = RequestIds()
        self.in_flight = 0

    @property
    def retry_policy(self) -> RetryPolicy | None:
        """The sidecar's retry policy calls start with now (None: retries are off)."""
        return self._routing.current.retry_policy

    async def handle(self, request: IncomingRequest, responder: Responder) -> None:
        """Forward one request; never raises for anything the upstream or the app does."""
        received = time.perf_counter()
        start_unix_ns = time.time_ns()
        raw_path, _, query = request.target.partition("?")
        path = origin_path(raw_path)
        if path.startswith("/_sidecar/") or path == "/_sidecar":
            self._own_endpoint(request, responder, path)
            return
        routing = self._routing.current
        route = routing.router.route(path, request.headers, query)
        request_id = self._request_ids()
        self.in_flight += 1
        try:
            if request.problem is not None or route.refusal is not None:
                self._refuse(
                    request, responder, routing, route, query, received, start_unix_ns, request_id
                )
            elif request.upgrade:
                await self._upgrade(
                    request, responder, routing, route, query, received, start_unix_ns, request_id
                )
            else:
                await self._forward(
                    request, responder, routing, route, query, received, start_unix_ns, request_id
                )
        finally:
            self.in_flight -= 1

    def _own_endpoint(self, request: IncomingRequest, responder: Responder, path: str) -> None:
        """The sidecar's own endpoints on the proxy listener (/_sidecar/...)."""
        endpoint = self._own_endpoints.get(path)
        status, body, extra = (
            NOT_FOUND if endpoint is None else endpoint(request.method, request.body)
        )
        headers = (("Content-Type", JSON_CONTENT_TYPE), *extra)
        responder.send(status, "", headers, orjson.dumps(body))

    def _refuse(
        self,
        request: IncomingRequest,
        responder: Responder,
        routing: Routing,
        route: Route,
        query: str,
        received: float,
        start_unix_ns: int,
        request_id: str,
    ) -> None:
        """Answer a request without forwarding it: the listener refused its body (too large,
        or not received in time), or the upstream its provider needs is not configured."""
        info = RequestInfo()
        if request.problem is not None:
            status = request.problem
            outcome, message = REJECTIONS[status]
            message = message.format(limit=routing.config.limits.max_request_body_bytes)
        else:
            assert route.refusal is not None
            status, outcome, message = REFUSED_STATUS, UPSTREAM_ERROR, route.refusal
            info = route.protocol.classify(
                request.method, route.path, query, request_fields(request)
            )
        call = Call(
            request.method,
            route,
            query,
            CIMultiDict(),
            b"",
            None,
            info,
            NO_OPTIONS,
            NOTHING,
        )
        self._exchange.refuse(
            call, received, start_unix_ns, request_id, responder, status, outcome, message
        )

    async def _upgrade(
        self,
        request: IncomingRequest,
        responder: Responder,
        routing: Routing,
        route: Route,
        query: str,
        received: float,
        start_unix_ns: int,
        request_id: str,
    ) -> None:
        """A WebSocket upgrade: relayed as a session on a path its protocol accepts them on
        (the Realtime API), else answered 400 in the provider's error shape."""
        forwarder = self._websockets
        if forwarder is None or not route.protocol.accepts_websocket(route.path):
            message = f"model-sidecar: WebSocket upgrades are not relayed on {route.path}"
            headers = (("Content-Type", JSON_CONTENT_TYPE), (REQUEST_ID_HEADER, request_id))
            responder.send(400, "", headers, route.protocol.error_body(400, message))
            return
        pool = routing.pools[route.upstream.name]
        await forwarder.forward(
            request.headers, responder, route, query, pool, received, start_unix_ns, request_id
        )

    async def _forward(
        self,
        request: IncomingRequest,
        responder: Responder,
        routing: Routing,
        route: Route,
        query: str,
        received: float,
        start_unix_ns: int,
        request_id: str,
    ) -> None:
        method = request.method
        body = request.body
        json = parse_json_body(body)
        fields = json
        if json is None and body:
            fields = form_fields(body, request.headers.get("Content-Type", ""))
        info = route.protocol.classify(method, route.path, query, fields)
        outbound = Outbound(method, route, query, body, json, info)
        # Attribution is decided once, from the app's own headers, before any is stripped.
        attribution = routing.attribution
        label = (
            None
            if attribution is None
            else attribution.resolve(request.headers.get(attribution.header))
        )
        strip = None if attribution is None else attribution.strip
        headers = upstream_request_headers(request.headers, self._encodings, strip)
        idempotency_key = headers.get("Idempotency-Key")
        decision = self._assigner.assign(request_id, outbound, request.headers)
        experiment = variant = pair_id = ""
        needs = 0
        if decision is not None:
            outbound = decision.outbound
            experiment, variant, pair_id = decision.experiment, decision.variant, decision.pair_id
            needs = decision.needs
        options = options_for(self._needs(outbound.info, outbound.json) | needs)
        call = Call.prepare(outbound, headers, options)
        record = self._exchange.open(
            call,
            received,
            start_unix_ns,
            request_id=request_id,
            experiment=experiment,
            variant=variant,
            pair_id=pair_id,
            client_retry_count=int_header(headers, "x-stainless-retry-count"),
            idempotency_key=hash_idempotency_key(idempotency_key) if idempotency_key else None,
            attribution=label,
        )
        if decision is not None and decision.shadows:
            self._shadows.launch(decision, call, record)
        pool = routing.pools[call.route.upstream.name]
        await self._exchange.run(call, record, responder, pool, routing.retry_policy)
