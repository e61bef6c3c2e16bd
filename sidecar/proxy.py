"""The forwarding path, top to bottom: read, route, forward, stream back, record."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from sidecar import record as outcomes
from sidecar.config import SidecarConfig
from sidecar.downstream import (
    ClientBodyTooLarge,
    error_response,
    is_client_side,
    origin_path,
    read_body,
)
from sidecar.enrich import Enrichment
from sidecar.enrich.confidence import parse_confidence
from sidecar.enrich.retries import hash_idempotency_key
from sidecar.experiments.feedback import (
    FEEDBACK_PATH,
    REQUEST_ID_HEADER,
    RequestIds,
    handle_feedback,
)
from sidecar.experiments.runtime import Experiments
from sidecar.headers import downstream_response_headers, upstream_request_headers
from sidecar.pipeline import Pipeline
from sidecar.protocols.base import (
    ResponseParser,
    StreamFilter,
    WireProtocol,
    decodable_encodings,
    parse_json_body,
)
from sidecar.record import CallRecord
from sidecar.retry import RetryPolicy, send_upstream
from sidecar.routing import Route, Router, Upstream
from sidecar.tracecontext import start_trace
from sidecar.upstream_request import Injected, inject_fields, int_header

# Bodies up to this size with a Content-Length are read whole and sent with one write.
SMALL_BODY_BYTES = 256 * 1024


class Proxy:
    """Forwards every request on the proxy listener and hands a CallRecord to the pipeline."""

    def __init__(
        self,
        config: SidecarConfig,
        router: Router,
        sessions: Mapping[str, aiohttp.ClientSession],
        pipeline: Pipeline,
        *,
        tracing: bool = False,
        capture_content: bool = False,
        enrichment: Enrichment | None = None,
        experiments: Experiments | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.sessions = sessions
        self.pipeline = pipeline
        self.experiments = experiments
        self.tracing = tracing
        self.capture_content = capture_content
        self.in_flight = 0
        self._max_body = config.limits.max_request_body_bytes
        self._client_timeout = config.limits.client_read_timeout_seconds
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
        sessions: Mapping[str, aiohttp.ClientSession],
    ) -> None:
        """Take a reloaded config; calls already under way keep their route and session."""
        self.config = config
        self.router, self.sessions = router, sessions
        self._max_body = config.limits.max_request_body_bytes
        self._client_timeout = config.limits.client_read_timeout_seconds
        if config.retries != self._retries:
            self._retries = config.retries
            self.retry_policy = RetryPolicy(config.retries) if config.retries.enabled else None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Forward one request; never raises for anything the upstream or the app does."""
        received = time.perf_counter()
        start_unix_ns = time.time_ns()
        raw_path, _, query = request.raw_path.partition("?")
        path = origin_path(raw_path)
        if path.startswith("/_sidecar/") or path == "/_sidecar":
            return await self._own_endpoint(request, path)
        sessions = self.sessions
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
            return await self._forward(request, route, query, record, sessions)
        finally:
            self.in_flight -= 1

    async def _own_endpoint(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        """The sidecar's own endpoints on the proxy listener (/_sidecar/...)."""
        if path == FEEDBACK_PATH and self.experiments is not None:
            experiments = self.experiments
            return await handle_feedback(request, experiments.feedback, experiments.record_feedback)
        return web.json_response({"error": {"message": "not found"}}, status=404)

    async def _forward(
        self,
        request: web.BaseRequest,
        route: Route,
        query: str,
        record: CallRecord,
        sessions: Mapping[str, aiohttp.ClientSession],
    ) -> web.StreamResponse:
        protocol = route.protocol
        try:
            body = await read_body(request, record, self._max_body, self._client_timeout)
        except ClientBodyTooLarge:
            self.pipeline.started(record)
            message = f"request body exceeds {self._max_body} bytes"
            return self._local_error(record, protocol, 413, message, outcomes.UPSTREAM_ERROR)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, aiohttp.ClientError):
            # The app did not send its body in time, or went away while sending it.
            self.pipeline.started(record)
            message = "model-sidecar: request body not received in time"
            return self._local_error(record, protocol, 408, message, outcomes.CLIENT_CANCELLED)

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

        session = sessions[route.upstream.name]
        url = route.upstream.url_for(route.path, query)
        try:
            upstream_response = await send_upstream(
                session, request.method, url, headers, body, record, self.retry_policy
            )
        except TimeoutError:
            return self._upstream_failure(record, protocol, None, 504, outcomes.TIMEOUT)
        except (aiohttp.ClientError, OSError):
            return self._upstream_failure(record, protocol, None, 502, outcomes.CONNECTION_ERROR)
        except asyncio.CancelledError:
            self._finish(record, outcomes.CLIENT_CANCELLED)
            raise
        record.upstream_headers = time.perf_counter()
        record.http_status = upstream_response.status
        if upstream_response.status >= 400:
            record.outcome = outcomes.UPSTREAM_ERROR
        try:
            return await self._relay(request, upstream_response, route.upstream, record, injected)
        finally:
            upstream_response.release()

    async def _relay(
        self,
        request: web.BaseRequest,
        upstream_response: aiohttp.ClientResponse,
        upstream: Upstream,
        record: CallRecord,
        injected: Injected,
    ) -> web.StreamResponse:
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
            return await self._relay_whole(upstream_response, protocol, record, parser, injected)

        headers = downstream_response_headers(up_headers, keep_length=stream_filter is None)
        headers[REQUEST_ID_HEADER] = record.request_id
        response = web.StreamResponse(
            status=upstream_response.status, reason=upstream_response.reason
        )
        response.headers.extend(headers)
        waited = time.perf_counter()
        await response.prepare(request)
        record.client_wait += time.perf_counter() - waited
        content = upstream_response.content
        try:
            while True:
                waited = time.perf_counter()
                data = await content.readany()
                now = time.perf_counter()
                record.upstream_wait += now - waited
                if not data:
                    break
                record.response_bytes += len(data)
                parser.feed(data, now)
                out = stream_filter.feed(data) if stream_filter is not None else data
                if out:
                    await response.write(out)
                    record.client_wait += time.perf_counter() - now
            if stream_filter is not None:
                tail = stream_filter.flush()
                if tail:
                    await response.write(tail)
        except TimeoutError:
            return self._abort_stream(
                request, response, upstream_response, record, parser, outcomes.TIMEOUT
            )
        except aiohttp.ClientPayloadError:
            return self._abort_stream(
                request, response, upstream_response, record, parser, outcomes.STREAM_INTERRUPTED
            )
        except (aiohttp.ClientError, OSError) as exc:
            if is_client_side(exc, request):
                return self._client_gone(response, upstream_response, record, parser)
            return self._abort_stream(
                request, response, upstream_response, record, parser, outcomes.STREAM_INTERRUPTED
            )
        except asyncio.CancelledError:
            self._client_gone(response, upstream_response, record, parser)
            raise
        parser.finish()
        if record.outcome == outcomes.OK and not parser.complete:
            record.outcome = outcomes.STREAM_INTERRUPTED
        # The record is final once the last upstream bytes were forwarded (TOOLING.md:
        # SDKs may close the connection right after the terminal event).
        self._finish(record, record.outcome)
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await response.write_eof()
        return response

    async def _relay_whole(
        self,
        upstream_response: aiohttp.ClientResponse,
        protocol: WireProtocol,
        record: CallRecord,
        parser: ResponseParser,
        injected: Injected,
    ) -> web.StreamResponse:
        """A whole body: read it, add cost and confidence headers, answer with one write."""
        waited = time.perf_counter()
        try:
            data = await upstream_response.read()
        except TimeoutError:
            return self._upstream_failure(record, protocol, waited, 504, outcomes.TIMEOUT)
        except (aiohttp.ClientError, OSError):
            return self._upstream_failure(
                record, protocol, waited, 502, outcomes.STREAM_INTERRUPTED
            )
        now = time.perf_counter()
        record.upstream_wait += now - waited
        record.response_bytes = len(data)
        parser.feed(data, now)
        parser.finish()
        headers = downstream_response_headers(upstream_response.headers, keep_length=False)
        headers[REQUEST_ID_HEADER] = record.request_id
        if upstream_response.status < 400:
            if injected.logprobs:
                data = protocol.body_without_logprobs(data)
            headers.extend(self.enrichment.response_headers(record))
        response = web.Response(
            status=upstream_response.status,
            reason=upstream_response.reason,
            body=data,
            headers=headers,
        )
        self._finish(record, record.outcome)
        return response

    def _local_error(
        self, record: CallRecord, protocol: WireProtocol, status: int, message: str, outcome: str
    ) -> web.Response:
        """An error the sidecar answers itself, in the provider's error shape."""
        record.http_status = status
        self._finish(record, outcome)
        return error_response(record, protocol, status, message)

    def _upstream_failure(
        self,
        record: CallRecord,
        protocol: WireProtocol,
        waited_since: float | None,
        status: int,
        outcome: str,
    ) -> web.Response:
        """The upstream could not be reached or did not answer in time: 502 or 504."""
        if waited_since is not None:
            record.upstream_wait += time.perf_counter() - waited_since
        word = "timed out" if status == 504 else "could not be reached"
        message = f"model-sidecar: upstream {record.upstream!r} {word}"
        self._finish(record, outcome)
        return error_response(record, protocol, status, message)

    def _abort_stream(
        self,
        request: web.BaseRequest,
        response: web.StreamResponse,
        upstream_response: aiohttp.ClientResponse,
        record: CallRecord,
        parser: ResponseParser,
        outcome: str,
    ) -> web.StreamResponse:
        """The upstream failed after the response began: the app sees an aborted stream."""
        upstream_response.close()
        parser.finish()
        self._finish(record, outcome)
        if request.transport is not None:
            request.transport.abort()
        return response

    def _client_gone(
        self,
        response: web.StreamResponse,
        upstream_response: aiohttp.ClientResponse,
        record: CallRecord,
        parser: ResponseParser,
    ) -> web.StreamResponse:
        """The app went away: close the upstream connection at once."""
        upstream_response.close()
        parser.finish()
        self._finish(record, outcomes.CLIENT_CANCELLED)
        return response

    def _finish(self, record: CallRecord, outcome: str, waited_since: float | None = None) -> None:
        now = time.perf_counter()
        if waited_since is not None:
            record.upstream_wait += now - waited_since
        record.outcome = outcome
        record.end = now
        self.pipeline.submit(record)
