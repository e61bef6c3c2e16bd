"""WebSocket sessions on the proxy listener: OpenAI's and Azure OpenAI's Realtime API.

The app's upgrade request goes to the route's upstream on a connection of its own (TLS as the
upstream's pool has it) with the app's headers and subprotocols — its `Sec-WebSocket-Key` too:
the app checks the upstream's `Sec-WebSocket-Accept` against it, so the handshake stays the
app's own, end to end. Only the compression offer (`Sec-WebSocket-Extensions`) is dropped:
compressed frames could not be read, and a session works the same without. The upstream's
answer goes back as it came: its 101 (then the app's connection is taken over,
`Responder.switch_protocols`), or its refusal as an HTTP response.

After the 101 the sidecar is a tunnel: every byte is written on as it arrives, both ways, never
re-framed, re-masked or held beyond the transports' own buffers, whose flow control passes
backpressure through. A client frame keeps the mask the app chose (a valid client frame for
the upstream too), so frames, fragmentation, pings and Close frames reach the other side
byte for byte. When one side's connection ends the other is closed at once (aborted if it has
not closed within a second). A FrameScanner per direction watches the bytes for telemetry
(protocols/websocket_frames.py, protocols/openai_realtime.py); a scanner that fails stops
watching, the relay goes on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import cast

import httptools
from multidict import CIMultiDict

from sidecar.forward.headers import downstream_response_headers, upstream_request_headers
from sidecar.forward.requestid import REQUEST_ID_HEADER
from sidecar.forward.routing import Route
from sidecar.forward.tracecontext import new_span_id, start_trace
from sidecar.forward.unreachable import UnreachableLog
from sidecar.http1.client import UpstreamError, UpstreamPool
from sidecar.http1.responder import RawChannel, Responder
from sidecar.pipeline import Pipeline
from sidecar.protocols.decoding import decodable_encodings
from sidecar.protocols.openai_realtime import RealtimeSession, session_model
from sidecar.protocols.websocket_frames import FrameScanner
from sidecar.record import (
    BY_CLIENT,
    BY_SIDECAR,
    BY_UPSTREAM,
    CLIENT_CANCELLED,
    CONNECTION_ERROR,
    NORMAL_CLOSE_CODES,
    OK,
    STREAM_INTERRUPTED,
    TIMEOUT,
    UPSTREAM_ERROR,
    CallRecord,
    SessionRecord,
)
from sidecar.telemetry.sessions import SessionTelemetry

log = logging.getLogger("sidecar.websocket")

# After one side's connection ended, how long the other may take to close before it is
# aborted.
CLOSE_GRACE_SECONDS = 1.0
# A refusal's body (the upstream's answer instead of a 101) is read up to this size.
MAX_REFUSAL_BODY = 1 << 20
JSON_HEADERS = (("Content-Type", "application/json"),)


class _UpstreamLeg(asyncio.Protocol):
    """The upstream connection: first the answer to the upgrade request, parsed with
    httptools, then the tunnel's upstream side."""

    transport: asyncio.Transport

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        # What came after the 101's head before the tunnel took the connection over.
        self.rest = b""
        self.switched = False
        self.lost = False
        self.lost_error: Exception | None = None
        self._head_done = False
        # Set when the answer is known: a 101's head, or a whole refusal.
        self.answered: asyncio.Future[None] = loop.create_future()
        self.tunnel: Tunnel | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.upstream_data(data)
            return
        if self.switched:
            self.rest += data
            return
        if self.answered.done():
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.switched = True
            self.rest = data[exc.args[0] :] if exc.args else b""
            self._answer()
        except httptools.HttpParserError as exc:
            self._answer(UpstreamError(f"malformed answer to the upgrade request: {exc}"))
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.lost_error = exc
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.upstream_lost()
        elif self._head_done and not self.switched:
            self._answer()  # a refusal whose body ended with the connection
        else:
            why = f": {exc}" if exc else ""
            self._answer(UpstreamError(f"upstream closed the connection before answering{why}"))

    def pause_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.upstream_paused(True)

    def resume_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.upstream_paused(False)

    def _answer(self, error: Exception | None = None) -> None:
        if self.answered.done():
            return
        if error is None:
            self.answered.set_result(None)
        else:
            self.answered.set_exception(error)

    # httptools callbacks

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        if len(self.body) < MAX_REFUSAL_BODY:
            self.body += body[: MAX_REFUSAL_BODY - len(self.body)]

    def on_message_complete(self) -> None:
        if self.status != 101:
            self._answer()

    def upgrades_to_websocket(self) -> bool:
        """A 101 that switches to `websocket`."""
        return self.switched and any(
            name.lower() == "upgrade" and "websocket" in value.lower()
            for name, value in self.headers
        )


class Tunnel:
    """Relays the bytes of one session both ways, unchanged, and lets the scanners watch them.

    It is the app connection's new protocol (`Upgraded`): the app's bytes and its flow-control
    events arrive here; the upstream leg hands on the upstream's."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        leg: _UpstreamLeg,
        realtime: RealtimeSession,
    ) -> None:
        self._loop = loop
        self._leg = leg
        self._upstream = leg.transport
        self._session = realtime.session
        self._client: FrameScanner | None = FrameScanner(realtime.client)
        self._server: FrameScanner | None = FrameScanner(realtime.server)
        self._app: RawChannel | None = None
        self._app_open = True
        self._upstream_open = True
        self._timers: list[asyncio.TimerHandle] = []
        self.done: asyncio.Future[None] = loop.create_future()

    def start(self, app: RawChannel, first: bytes) -> None:
        """The app has its 101 (and `first`, the upstream's bytes that came with it)."""
        self._app = app
        if first:
            self._watch_server(first, time.perf_counter())
        self._leg.tunnel = self
        if self._leg.lost:
            self.upstream_lost()

    # The app's side (the connection's new protocol).

    def data_received(self, data: bytes) -> None:
        if self._upstream_open:
            self._upstream.write(data)
        scanner = self._client
        if scanner is not None:
            try:
                scanner.feed(data, time.perf_counter())
            except Exception:
                log.exception("watching a WebSocket session failed; it is relayed unwatched")
                self._client = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._app_open = False
        if not self._session.closed_by:
            self._session.closed_by = BY_CLIENT
        if self._upstream_open:
            self._upstream.close()
            self._later(self._upstream.abort)
        self._check_done()

    def pause_writing(self) -> None:
        if self._upstream_open:
            self._upstream.pause_reading()

    def resume_writing(self) -> None:
        if self._upstream_open:
            self._upstream.resume_reading()

    # The upstream's side (told by the leg).

    def upstream_data(self, data: bytes) -> None:
        app = self._app
        if app is not None and self._app_open:
            app.write(data)
        self._watch_server(data, time.perf_counter())

    def upstream_lost(self) -> None:
        self._upstream_open = False
        if not self._session.closed_by:
            self._session.closed_by = BY_UPSTREAM
        app = self._app
        if app is not None and self._app_open:
            app.close()
            self._later(app.abort)
        self._check_done()

    def upstream_paused(self, paused: bool) -> None:
        app = self._app
        if app is None or not self._app_open:
            return
        if paused:
            app.pause_reading()
        else:
            app.resume_reading()

    def cut(self) -> None:
        """End the session now (the sidecar is shutting down): drop both connections."""
        if not self._session.closed_by:
            self._session.closed_by = BY_SIDECAR
        if self._upstream_open:
            self._upstream.abort()
        if self._app is not None and self._app_open:
            self._app.abort()
        self._cancel_timers()

    def _watch_server(self, data: bytes, now: float) -> None:
        scanner = self._server
        if scanner is not None:
            try:
                scanner.feed(data, now)
            except Exception:
                log.exception("watching a WebSocket session failed; it is relayed unwatched")
                self._server = None

    def _later(self, abort: Callable[[], None]) -> None:
        self._timers.append(self._loop.call_later(CLOSE_GRACE_SECONDS, abort))

    def _check_done(self) -> None:
        if not self._app_open and not self._upstream_open:
            self._cancel_timers()
            if not self.done.done():
                self.done.set_result(None)

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()


class _Events:
    """Where one session's findings go: responses through the pipeline, errors and the
    session itself to the session telemetry."""

    __slots__ = ("_pipeline", "_sessions")

    def __init__(self, pipeline: Pipeline, sessions: SessionTelemetry) -> None:
        self._pipeline = pipeline
        self._sessions = sessions

    def response_started(self, record: CallRecord) -> None:
        self._pipeline.started(record)

    def response_finished(self, record: CallRecord) -> None:
        self._pipeline.submit(record)

    def error(self, session: SessionRecord, error_type: str) -> None:
        self._sessions.error(session, error_type)


class WebSocketForwarder:
    """Forwards WebSocket upgrades to the upstream and relays their sessions."""

    def __init__(
        self,
        pipeline: Pipeline,
        sessions: SessionTelemetry,
        *,
        tracing: bool,
        propagate_traceparent: bool,
    ) -> None:
        self._sessions = sessions
        self._events = _Events(pipeline, sessions)
        self._tracing = tracing
        self._propagate = propagate_traceparent and tracing
        self._rng = random.Random()
        self._encodings = decodable_encodings()
        self._unreachable = UnreachableLog()

    def _new_span_id(self) -> int:
        return new_span_id(self._rng)

    async def forward(
        self,
        request_headers: CIMultiDict[str],
        responder: Responder,
        route: Route,
        query: str,
        pool: UpstreamPool,
        received: float,
        start_unix_ns: int,
        request_id: str,
    ) -> None:
        """Forward one upgrade request and, once the upstream switched protocols, relay the
        session until both sides are closed. Never raises for what either side does; the
        caller's cancellation (shutdown) cuts the session and is re-raised."""
        upstream = route.upstream
        session = SessionRecord(
            upstream=upstream.name,
            protocol=route.protocol.name,
            provider_name=upstream.provider or route.protocol.provider_name,
            path=route.path,
            server_address=upstream.host,
            server_port=upstream.port,
            request_model=session_model(query),
            request_id=request_id,
            start_unix_ns=start_unix_ns,
            received=received,
        )
        headers = upstream_request_headers(request_headers, self._encodings)
        headers.popall("Sec-WebSocket-Extensions", None)
        headers["Upgrade"] = "websocket"
        headers["Connection"] = "Upgrade"
        if self._tracing:
            ids = start_trace(headers, self._rng, propagate=self._propagate)
            session.trace_id, session.span_id = ids.trace_id, ids.span_id
            session.parent_span_id, session.trace_sampled = ids.parent_span_id, ids.sampled
        loop = asyncio.get_running_loop()
        leg: _UpstreamLeg | None = None
        try:
            try:
                head = pool.encode_head("GET", upstream.target_for(route.path, query), headers, b"")
                _, protocol = await pool.connect_raw(lambda: _UpstreamLeg(loop))
                leg = cast(_UpstreamLeg, protocol)
                leg.transport.write(head)
                async with asyncio.timeout(pool.read_timeout):
                    await leg.answered
            except (TimeoutError, UpstreamError, OSError) as error:
                self._unreached(session, responder, route, error, leg)
                return
            if not leg.upgrades_to_websocket():
                self._refused(session, responder, leg, request_id)
                return
            await self._relay(session, responder, route, leg, loop)
        except asyncio.CancelledError:
            if leg is not None and not leg.lost:
                leg.transport.abort()
            if session.opened is None:
                session.outcome = CLIENT_CANCELLED
                self._finish(session)
            raise

    def _unreached(
        self,
        session: SessionRecord,
        responder: Responder,
        route: Route,
        error: BaseException,
        leg: _UpstreamLeg | None,
    ) -> None:
        """No answer from the upstream: a 502 (504 on a timeout) in the provider's shape."""
        if leg is not None and not leg.lost:
            leg.transport.abort()
        timed_out = isinstance(error, TimeoutError)
        session.outcome = TIMEOUT if timed_out else CONNECTION_ERROR
        if not timed_out:
            self._unreachable.note(
                session.upstream, session.server_address, session.server_port, error
            )
        status = 504 if timed_out else 502
        word = "timed out" if timed_out else "could not be reached"
        message = f"model-sidecar: upstream {session.upstream!r} {word}"
        headers = (*JSON_HEADERS, (REQUEST_ID_HEADER, session.request_id))
        responder.send(status, "", headers, route.protocol.error_body(status, message))
        self._finish(session)

    def _refused(
        self, session: SessionRecord, responder: Responder, leg: _UpstreamLeg, request_id: str
    ) -> None:
        """The upstream answered without switching to WebSocket: its answer goes to the app."""
        if not leg.lost:
            leg.transport.abort()
        session.http_status = leg.status
        session.outcome = UPSTREAM_ERROR
        headers = downstream_response_headers(CIMultiDict(leg.headers))
        headers[REQUEST_ID_HEADER] = request_id
        reason = leg.reason.decode("latin-1")
        status = leg.status if leg.status >= 200 and leg.status != 101 else 502
        reason = reason if status == leg.status else ""
        responder.send(status, reason, headers.items(), bytes(leg.body))
        self._finish(session)

    async def _relay(
        self,
        session: SessionRecord,
        responder: Responder,
        route: Route,
        leg: _UpstreamLeg,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        realtime = RealtimeSession(
            session, self._events, self._new_span_id, route.upstream.deployments
        )
        tunnel = Tunnel(loop, leg, realtime)
        lines = [f"HTTP/1.1 101 {leg.reason.decode('latin-1') or 'Switching Protocols'}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in leg.headers]
        lines.append(f"{REQUEST_ID_HEADER}: {session.request_id}\r\n\r\n")
        first = leg.rest
        leg.rest = b""
        session.http_status = 101
        channel = responder.switch_protocols("".join(lines).encode("latin-1") + first, tunnel)
        session.opened = time.perf_counter()
        self._sessions.opened(session)
        tunnel.start(channel, first)
        try:
            await tunnel.done
        except asyncio.CancelledError:
            tunnel.cut()
            self._end(session, realtime)
            raise
        self._end(session, realtime)

    def _end(self, session: SessionRecord, realtime: RealtimeSession) -> None:
        """The relay is over: how it ended, the responses still open, the session's record."""
        now = time.perf_counter()
        code = session.close_code
        by_client = session.closed_by == BY_CLIENT
        if code is not None and code in NORMAL_CLOSE_CODES:
            session.outcome = OK
        elif code is not None:
            session.outcome = CLIENT_CANCELLED if by_client else UPSTREAM_ERROR
        else:  # a connection ended without a Close frame
            session.outcome = CLIENT_CANCELLED if by_client else STREAM_INTERRUPTED
        realtime.finish(now, CLIENT_CANCELLED if by_client else STREAM_INTERRUPTED)
        self._finish(session, now)
        log.debug(
            "realtime session ended",
            extra={
                "upstream": session.upstream,
                "path": session.path,
                "model": session.request_model,
                "duration_s": round(session.duration, 3),
                "close_code": code,
                "closed_by": session.closed_by,
                "responses": session.responses,
            },
        )

    def _finish(self, session: SessionRecord, now: float | None = None) -> None:
        session.end = time.perf_counter() if now is None else now
        self._sessions.finished(session)
