"""The forwarding path, top to bottom: read, route, forward, stream back, record."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping

import orjson

from sidecar import record as outcomes
from sidecar.config.models import SidecarConfig
from sidecar.enrich import Enrichment
from sidecar.enrich.confidence import parse_confidence
from sidecar.enrich.retries import hash_idempotency_key
from sidecar.experiments.feedback import FEEDBACK_PATH, handle_feedback
from sidecar.experiments.runtime import Experiments
from sidecar.forward.errors import JSON_CONTENT_TYPE, send_error
from sidecar.forward.headers import (
    downstream_response_headers,
    int_header,
    upstream_request_headers,
)
from sidecar.forward.inject import Injected, inject_fields
from sidecar.forward.requestid import REQUEST_ID_HEADER, RequestIds
from sidecar.forward.retry import RetryPolicy, send_upstream
from sidecar.forward.routing import Route, Router, Upstream, origin_path
from sidecar.forward.tracecontext import start_trace
from sidecar.http1.client import UpstreamError, UpstreamPool, UpstreamResponse
from sidecar.http1.listener import IncomingRequest, Responder
from sidecar.pipeline import Pipeline
from sidecar.protocols.decoding import decodable_encodings
from sidecar.protocols.interface import StreamFilter, WireProtocol
from sidecar.protocols.jsonfields import parse_json_body
from sidecar.protocols.parsers import ResponseParser
from sidecar.record import CallRecord

# Bodies up to this size with a Content-Length are read whole and sent with one write.
SMALL_BODY_BYTES = 256 * 1024
# Bodies the listener refused before the handler ran, by status: the outcome and the message.
REJECTIONS = {
    413: (outcomes.UPSTREAM_ERROR, "request body exceeds {limit} bytes"),
    408: (outcomes.CLIENT_CANCELLED, "model-sidecar: request body not received in time"),
}


class Proxy:
    """Forwards every request on the proxy listener and hands a CallRecord to the pipeline."""

    def __init__(
        self,
        config: SidecarConfig,
        router: Router,
        pools: Mapping[str, UpstreamPool],
        pipeline: Pipeline,
        *,
        tracing: bool = False,
        capture_content: bool = False,
        enrichment: Enrichment | None = None,
        experiments: Experiments | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.pools = pools
        self.pipeline = pipeline
        self.experiments = experiments
        self.tracing = tracing
        self.capture_content = capture_content
        self.in_flight = 0
        self._max_body = config.limits.max_request_body_bytes
        self._inject_usage = config.telemetry.inject_stream_usage
        self._propagate = config.telemetry.propagate_traceparent and tracing
        self._encodings = decodable_encodings()
        self._rng = random.Random()
        self._request_ids = RequestIds()
        self.enrichment = enrichment if enrichment is not None else Enrichment(config)
        self._retries = config.retries
        self.retry_policy = RetryPolicy(config.retries) if config.retries.enabled else None

    def reconfigure(
        self,
        config: SidecarConfig,
        router: Router,
        pools: Mapping[str, UpstreamPool],
    ) -> None:
        """Take a reloaded config; calls already under way keep their route and pool."""
        self.config = config
        self.router, self.pools = router, pools
        self._max_body = config.limits.max_request_body_bytes
        if config.retries != self._retries:
            self._retries = config.retries
            self.retry_policy = RetryPolicy(config.retries) if config.retries.enabled else None

    async def handle(self, request: IncomingRequest, responder: Responder) -> None:
        """Forward one request; never raises for anything the upstream or the app does."""
        received = time.perf_counter()
        start_unix_ns = time.time_ns()
        raw_path, _, query = request.target.partition("?")
        path = origin_path(raw_path)
        if path.startswith("/_sidecar/") or path == "/_sidecar":
            self._own_endpoint(request, responder, path)
            return
        pools = self.pools
        route = self.router.route(path)
        upstream = route.upstream
        protocol = route.protocol
        record = CallRecord(
            upstream=upstream.name,
            protocol=protocol.name,
            provider_name=protocol.provider_name,
            method=request.method,
            path=route.path,
            server_address=upstream.host,
            server_port=upstream.port,
            start_unix_ns=start_unix_ns,
            received=received,
            capture_content=self.capture_content,
            request_id=self._request_ids(),
        )
        self.in_flight += 1
        try:
            await self._forward(request, responder, route, query, record, pools)
        finally:
            self.in_flight -= 1

    def _own_endpoint(self, request: IncomingRequest, responder: Responder, path: str) -> None:
        """The sidecar's own endpoints on the proxy listener (/_sidecar/...)."""
        if path == FEEDBACK_PATH and self.experiments is not None:
            experiments = self.experiments
            reply = handle_feedback(
                request.method, request.body, experiments.feedback, experiments.record_feedback
            )
            status, body, extra = reply.status, reply.body, reply.headers
        else:
            status, body, extra = 404, {"error": {"message": "not found"}}, ()
        headers = (("Content-Type", JSON_CONTENT_TYPE), *extra)
        responder.send(status, "", headers, orjson.dumps(body))

    async def _forward(
        self,
        request: IncomingRequest,
        responder: Responder,
        route: Route,
        query: str,
        record: CallRecord,
        pools: Mapping[str, UpstreamPool],
    ) -> None:
        protocol = route.protocol
        if request.problem is not None:
            # The listener refused the body (too large, or not received in time).
            self.pipeline.started(record)
            outcome, message = REJECTIONS[request.problem]
            message = message.format(limit=self._max_body)
            self._local_error(responder, record, protocol, request.problem, message, outcome)
            return
        body = request.body
        info = protocol.classify(request.method, route.path, query, parse_json_body(body))
        record.request = info
        headers = upstream_request_headers(request.headers, self._encodings)
        record.client_retry_count = int_header(headers, "x-stainless-retry-count")
        idempotency_key = headers.get("Idempotency-Key")
        if idempotency_key:
            record.idempotency_key = hash_idempotency_key(idempotency_key)
        plan = None
        if self.experiments is not None:
            plan = self.experiments.prepare(record, route, query, body, request.headers)
            if plan is not None:
                route, body = plan.route, plan.body
        body, injected = inject_fields(
            protocol, record, body, self._inject_usage, self.enrichment.request_logprobs
        )
        if injected.any:
            # What the sidecar added must be removed byte-exactly: keep it uncompressed.
            headers["Accept-Encoding"] = "identity"
        self.enrichment.prepare(record)
        if self.tracing:
            start_trace(headers, record, self._rng, propagate=self._propagate)
        self.pipeline.started(record)
        if plan is not None and plan.shadows:
            assert self.experiments is not None
            self.experiments.launch(plan, record, headers)

        pool = pools[route.upstream.name]
        target = route.upstream.target_for(route.path, query)
        try:
            upstream_response = await send_upstream(
                pool, request.method, target, headers, body, record, self.retry_policy
            )
        except TimeoutError:
            self._upstream_failure(responder, record, protocol, None, 504, outcomes.TIMEOUT)
            return
        except (UpstreamError, OSError):
            self._upstream_failure(
                responder, record, protocol, None, 502, outcomes.CONNECTION_ERROR
            )
            return
        except asyncio.CancelledError:
            self._finish(record, outcomes.CLIENT_CANCELLED)
            raise
        record.upstream_headers = time.perf_counter()
        record.http_status = upstream_response.status
        if upstream_response.status >= 400:
            record.outcome = outcomes.UPSTREAM_ERROR
        try:
            await self._relay(responder, upstream_response, route.upstream, record, injected)
        finally:
            upstream_response.release()

    async def _relay(
        self,
        responder: Responder,
        upstream_response: UpstreamResponse,
        upstream: Upstream,
        record: CallRecord,
        injected: Injected,
    ) -> None:
        """Send the upstream's response to the app as it arrives, parsing it on the way.

        A body with a small known length (or one carrying logprobs the sidecar must
        remove) is read whole and answered with cost and confidence headers; streams and
        large bodies are passed on chunk by chunk and get none (their cost and confidence
        are known only once the app has them).
        """
        protocol = upstream.protocol
        up_headers = upstream_response.headers
        content_type = up_headers.get("Content-Type", "")
        parser = protocol.response_parser(
            record, content_type, up_headers.get("Content-Encoding", "")
        )
        confidence_header = self.enrichment.confidence_header
        if confidence_header is not None and confidence_header in up_headers:
            record.reported_confidence = parse_confidence(up_headers[confidence_header])
        length = upstream_response.content_length
        stream_filter: StreamFilter | None = None
        if content_type.startswith("text/event-stream"):
            if injected.any:
                stream_filter = protocol.stream_filter(
                    usage=injected.usage, logprobs=injected.logprobs
                )
        elif injected.logprobs or (length is not None and length <= SMALL_BODY_BYTES):
            await self._relay_whole(
                responder, upstream_response, protocol, record, parser, injected
            )
            return

        headers = downstream_response_headers(up_headers)
        headers[REQUEST_ID_HEADER] = record.request_id
        # Bytes that came with the upstream's head go to the app in the same write as ours.
        first = upstream_response.read_nowait()
        if first:
            record.response_bytes += len(first)
            parser.feed(first, time.perf_counter())
            if stream_filter is not None:
                first = stream_filter.feed(first)
        responder.start(
            upstream_response.status,
            upstream_response.reason,
            headers.items(),
            length if stream_filter is None else None,
            first,
        )
        try:
            while True:
                waited = time.perf_counter()
                data = await upstream_response.read_chunk()
                now = time.perf_counter()
                record.upstream_wait += now - waited
                if not data:
                    break
                record.response_bytes += len(data)
                parser.feed(data, now)
                out = stream_filter.feed(data) if stream_filter is not None else data
                if out:
                    responder.write(out)
                    await responder.drain()
                    record.client_wait += time.perf_counter() - now
            if stream_filter is not None:
                responder.write(stream_filter.flush())
        except TimeoutError:
            self._abort_stream(responder, upstream_response, record, parser, outcomes.TIMEOUT)
            return
        except (UpstreamError, OSError):
            self._abort_stream(
                responder, upstream_response, record, parser, outcomes.STREAM_INTERRUPTED
            )
            return
        except asyncio.CancelledError:
            # The app went away: close the upstream connection at once.
            upstream_response.close()
            parser.finish()
            self._finish(record, outcomes.CLIENT_CANCELLED)
            raise
        parser.finish()
        if record.outcome == outcomes.OK and not parser.complete:
            record.outcome = outcomes.STREAM_INTERRUPTED
        # The record is final once the last upstream bytes were forwarded (TOOLING.md:
        # SDKs may close the connection right after the terminal event).
        self._finish(record, record.outcome)
        responder.end()

    async def _relay_whole(
        self,
        responder: Responder,
        upstream_response: UpstreamResponse,
        protocol: WireProtocol,
        record: CallRecord,
        parser: ResponseParser,
        injected: Injected,
    ) -> None:
        """A whole body: read it, add cost and confidence headers, answer with one write."""
        waited = time.perf_counter()
        try:
            data = await upstream_response.read()
        except TimeoutError:
            self._upstream_failure(responder, record, protocol, waited, 504, outcomes.TIMEOUT)
            return
        except (UpstreamError, OSError):
            self._upstream_failure(
                responder, record, protocol, waited, 502, outcomes.STREAM_INTERRUPTED
            )
            return
        now = time.perf_counter()
        record.upstream_wait += now - waited
        record.response_bytes = len(data)
        parser.feed(data, now)
        parser.finish()
        headers = downstream_response_headers(upstream_response.headers)
        headers[REQUEST_ID_HEADER] = record.request_id
        if upstream_response.status < 400:
            if injected.logprobs:
                data = protocol.body_without_logprobs(data)
            headers.extend(self.enrichment.response_headers(record))
        self._finish(record, record.outcome)
        responder.send(upstream_response.status, upstream_response.reason, headers.items(), data)

    def _local_error(
        self,
        responder: Responder,
        record: CallRecord,
        protocol: WireProtocol,
        status: int,
        message: str,
        outcome: str,
    ) -> None:
        """An error the sidecar answers itself, in the provider's error shape."""
        record.http_status = status
        self._finish(record, outcome)
        send_error(responder, record, protocol, status, message)

    def _upstream_failure(
        self,
        responder: Responder,
        record: CallRecord,
        protocol: WireProtocol,
        waited_since: float | None,
        status: int,
        outcome: str,
    ) -> None:
        """The upstream could not be reached or did not answer in time: 502 or 504."""
        if waited_since is not None:
            record.upstream_wait += time.perf_counter() - waited_since
        word = "timed out" if status == 504 else "could not be reached"
        message = f"model-sidecar: upstream {record.upstream!r} {word}"
        self._finish(record, outcome)
        send_error(responder, record, protocol, status, message)

    def _abort_stream(
        self,
        responder: Responder,
        upstream_response: UpstreamResponse,
        record: CallRecord,
        parser: ResponseParser,
        outcome: str,
    ) -> None:
        """The upstream failed after the response began: the app sees an aborted stream."""
        upstream_response.close()
        parser.finish()
        self._finish(record, outcome)
        responder.abort()

    def _finish(self, record: CallRecord, outcome: str) -> None:
        record.outcome = outcome
        record.end = time.perf_counter()
        self.pipeline.submit(record)
