"""The exchange with an upstream: the one routine that forwards a call, for the app's calls and
for shadow copies alike.

The request goes out with the sidecar's own retries (only while nothing has reached the
downstream); the response is relayed to a downstream as it arrives — the app's responder, or
`DISCARD` for a shadow copy — and parsed as its bytes pass; the outcome is decided here, and
`failure_outcome` is the one mapping from an exception to an outcome. Before the stages run,
only this module and the response parsers write a CallRecord.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, NamedTuple, Protocol

from multidict import CIMultiDict

from sidecar.forward.facts import kept_body, request_fingerprint
from sidecar.forward.headers import downstream_response_headers
from sidecar.forward.inject import Injected, inject_fields
from sidecar.forward.misroute import MisrouteHints
from sidecar.forward.requestid import REQUEST_ID_HEADER
from sidecar.forward.retry import RetryPolicy
from sidecar.forward.routing import Route
from sidecar.forward.tracecontext import start_trace
from sidecar.forward.unreachable import UnreachableLog
from sidecar.http1.client import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
)
from sidecar.pipeline import Pipeline
from sidecar.protocols.interface import StreamFilter, WireProtocol
from sidecar.protocols.parsers import ResponseParser
from sidecar.protocols.ratelimit import read_rate_limits
from sidecar.record import (
    CLIENT_CANCELLED,
    CONNECTION_ERROR,
    OK,
    STREAM_INTERRUPTED,
    TIMEOUT,
    UPSTREAM_ERROR,
    CallOptions,
    CallRecord,
    RequestInfo,
    RetryAttempt,
)

# Bodies up to this size with a Content-Length are read whole and sent with one write.
SMALL_BODY_BYTES = 256 * 1024
JSON_CONTENT_TYPE = "application/json"
# What an upstream (or the app's connection) raises when the exchange cannot go on.
_UPSTREAM_ERRORS = (TimeoutError, UpstreamError, OSError)

DerivedHeaders = Callable[[CallRecord], list[tuple[str, str]]]


class Downstream(Protocol):
    """Where a response goes: the app's responder (sidecar/http1), or `DISCARD`."""

    def send(
        self, status: int, reason: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> None:
        """A whole response in one write."""

    def start(
        self,
        status: int,
        reason: str,
        headers: Iterable[tuple[str, str]],
        content_length: int | None,
        body: bytes = b"",
    ) -> None:
        """The head, and with it the first body bytes."""

    def write(self, data: bytes) -> None:
        """More body bytes."""

    async def drain(self) -> None:
        """Wait while the receiver is not taking bytes."""

    def end(self) -> None:
        """The response is complete."""

    def abort(self) -> None:
        """Break the response off: the receiver sees it incomplete."""


class Discard:
    """A downstream that throws every response away (a shadow copy's answer reaches nobody)."""

    def send(
        self, status: int, reason: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> None:
        return None

    def start(
        self,
        status: int,
        reason: str,
        headers: Iterable[tuple[str, str]],
        content_length: int | None,
        body: bytes = b"",
    ) -> None:
        return None

    def write(self, data: bytes) -> None:
        return None

    async def drain(self) -> None:
        return None

    def end(self) -> None:
        return None

    def abort(self) -> None:
        return None


DISCARD = Discard()


class Outbound(NamedTuple):
    """A request as it is to go upstream, before the sidecar adds anything: the app's own, or
    an experiment arm's rewrite of it."""

    method: str
    route: Route
    query: str
    body: bytes
    # `body` decoded as JSON (None when it is not JSON).
    json: Any
    # What the route's protocol learnt of the request.
    info: RequestInfo


class Call(NamedTuple):
    """One call to forward, as its sender decided it before forwarding: where it goes, what it
    sends (with what the sidecar injected), what the protocol learnt of it, and what the
    stages need of it. The proxy and shadow copies each describe their calls this way.

    A NamedTuple: immutable like a frozen dataclass, at a quarter of its cost to build."""

    method: str
    route: Route
    query: str
    headers: CIMultiDict[str]
    body: bytes
    # `body` as decoded JSON before injection (None when it is not JSON).
    json: Any
    request: RequestInfo
    options: CallOptions
    injected: Injected

    @classmethod
    def prepare(cls, outbound: Outbound, headers: CIMultiDict[str], options: CallOptions) -> Call:
        """The call of `outbound`, with what `options` ask for injected into its body and
        `headers`."""
        method, route, query, body, json, info = outbound
        sent, injected = inject_fields(route.protocol, info, json, body, options, headers)
        if injected.logprobs:
            info = replace(info, logprobs=True)
        return cls(method, route, query, headers, sent, json, info, options, injected)


def failure_outcome(error: BaseException, response_began: bool) -> str:
    """The outcome of a call that `error` cut short; `response_began`: the upstream's
    response head had arrived."""
    if isinstance(error, asyncio.CancelledError):
        return CLIENT_CANCELLED
    if isinstance(error, TimeoutError):
        return TIMEOUT
    return STREAM_INTERRUPTED if response_began else CONNECTION_ERROR


def send_error(
    downstream: Downstream,
    record: CallRecord,
    protocol: WireProtocol,
    status: int,
    message: str,
) -> None:
    """Answer an error the sidecar decided itself, in the provider's shape, with the request id."""
    headers = (("Content-Type", JSON_CONTENT_TYPE), (REQUEST_ID_HEADER, record.request_id))
    downstream.send(status, "", headers, protocol.error_body(status, message))


class Exchange:
    """Forwards calls: opens each call's record, runs the exchange, hands the record on."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        derived_headers: DerivedHeaders | None,
        reported_confidence_header: str | None,
        tracing: bool,
        propagate_traceparent: bool,
    ) -> None:
        self._pipeline = pipeline
        # Cost and confidence headers of whole bodies (None: neither is sent).
        self._derived_headers = derived_headers
        self._confidence_header = reported_confidence_header
        self._tracing = tracing
        self._propagate = propagate_traceparent and tracing
        self._rng = random.Random()
        # Why upstreams could not be reached, logged (the outcome alone does not say).
        self._unreachable = UnreachableLog()
        self._misroutes = MisrouteHints()

    def open(
        self,
        call: Call,
        received: float,
        start_unix_ns: int,
        *,
        request_id: str = "",
        experiment: str = "",
        variant: str = "",
        pair_id: str = "",
        client_retry_count: int = 0,
        idempotency_key: bytes | None = None,
        trace_parent: tuple[int, int, bool] | None = None,
        attribution: str | None = None,
    ) -> CallRecord:
        """The call's record with every fact known before forwarding; its span's ids given
        (and sent upstream when propagating) and the sinks told the call has begun."""
        record = self._new_record(
            call,
            received,
            start_unix_ns,
            request_id,
            experiment,
            variant,
            pair_id,
            client_retry_count,
            idempotency_key,
        )
        record.attribution = attribution
        if self._tracing:
            ids = start_trace(
                call.headers, self._rng, propagate=self._propagate, parent=trace_parent
            )
            record.trace_id, record.span_id = ids.trace_id, ids.span_id
            record.parent_span_id, record.trace_sampled = ids.parent_span_id, ids.sampled
        self._pipeline.started(record)
        return record

    def refuse(
        self,
        call: Call,
        received: float,
        start_unix_ns: int,
        request_id: str,
        downstream: Downstream,
        status: int,
        outcome: str,
        message: str,
    ) -> None:
        """A call the sidecar answers itself without forwarding it (its body was refused)."""
        record = self._new_record(call, received, start_unix_ns, request_id, "", "", "", 0, None)
        self._pipeline.started(record)
        record.http_status = status
        self._finish(record, outcome)
        send_error(downstream, record, call.route.protocol, status, message)

    @staticmethod
    def _new_record(
        call: Call,
        received: float,
        start_unix_ns: int,
        request_id: str,
        experiment: str,
        variant: str,
        pair_id: str,
        client_retry_count: int,
        idempotency_key: bytes | None,
    ) -> CallRecord:
        route = call.route
        upstream = route.upstream
        options = call.options
        return CallRecord(
            upstream=upstream.name,
            protocol=route.protocol.name,
            provider_name=upstream.provider or route.protocol.provider_name,
            method=call.method,
            path=route.path,
            server_address=upstream.host,
            server_port=upstream.port,
            request=call.request,
            options=options,
            request_body=(
                kept_body(call.json, len(call.body)) if options.keep_request_body else None
            ),
            request_fingerprint=(
                request_fingerprint(upstream.name, call.method, route.path, call.json)
                if options.fingerprint
                else None
            ),
            start_unix_ns=start_unix_ns,
            received=received,
            stream_usage_injected=call.injected.usage,
            request_id=request_id,
            experiment=experiment,
            variant=variant,
            pair_id=pair_id,
            client_retry_count=client_retry_count,
            idempotency_key=idempotency_key,
        )

    async def run(
        self,
        call: Call,
        record: CallRecord,
        downstream: Downstream,
        pool: UpstreamPool,
        retry: RetryPolicy | None,
    ) -> None:
        """Forward `call` and relay its response to `downstream`, parsing it on the way; the
        finished record goes to the pipeline. Nothing the upstream or the downstream does
        raises out of here, except the cancellation of the caller (re-raised)."""
        response: UpstreamResponse | None = None
        parser: ResponseParser | None = None
        stream_filter: StreamFilter | None = None
        whole: bytes | None = None  # a whole body, read before anything goes downstream
        relaying = False  # the downstream has the response head
        waiting_since: float | None = None  # set while waiting on the upstream's body
        upstream = call.route.upstream
        target = upstream.target_for(call.route.path, call.query)
        protocol = upstream.protocol
        try:
            try:
                if upstream.signer is not None:
                    # Signed as it goes out: after every change the sidecar makes to it.
                    await upstream.signer.sign(call.method, target, call.headers, call.body)
                response = await _send(
                    pool, call.method, target, call.headers, call.body, record, retry
                )
                record.upstream_headers = time.perf_counter()
                record.http_status = response.status
                if response.status >= 400:
                    record.outcome = UPSTREAM_ERROR
                    if response.status == 404 and call.route.unclaimed:
                        self._misroutes.not_found(call.route.path, record.upstream)
                up_headers = response.headers
                # Quota headroom, on every answer (429s included): read once, here.
                record.rate_limits, record.rate_limit_errors = read_rate_limits(
                    protocol.name, up_headers, time.time()
                )
                content_type = up_headers.get("Content-Type", "")
                parser = protocol.response_parser(
                    record, content_type, up_headers.get("Content-Encoding", "")
                )
                if self._confidence_header is not None:
                    record.reported_confidence = up_headers.get(self._confidence_header)
                injected = call.injected
                length = response.content_length
                if content_type.startswith("text/event-stream"):
                    if injected.any:
                        stream_filter = protocol.stream_filter(
                            usage=injected.usage, logprobs=injected.logprobs
                        )
                elif injected.logprobs or (length is not None and length <= SMALL_BODY_BYTES):
                    # A small body (or one carrying logprobs the sidecar must remove) is read
                    # whole and answered with its cost and confidence headers.
                    waiting_since = time.perf_counter()
                    whole = await response.read()
                if whole is None:
                    headers = downstream_response_headers(up_headers)
                    headers[REQUEST_ID_HEADER] = record.request_id
                    # Bytes that came with the upstream's head go in the same write as the head.
                    first = response.read_nowait()
                    if first:
                        parser.feed(first, time.perf_counter())
                        if stream_filter is not None:
                            first = stream_filter.feed(first)
                    downstream.start(
                        response.status,
                        response.reason,
                        headers.items(),
                        length if stream_filter is None else None,
                        first,
                    )
                    relaying = True
                    await self._relay_stream(downstream, response, record, parser, stream_filter)
            except (*_UPSTREAM_ERRORS, asyncio.CancelledError) as error:
                if waiting_since is not None:
                    record.upstream_wait += time.perf_counter() - waiting_since
                self._fail(call, record, downstream, response, parser, relaying, error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                return
            # The connection goes back to its pool only after the response is complete.
            assert parser is not None and response is not None
            if whole is not None:
                assert waiting_since is not None
                self._send_whole(downstream, response, call, record, parser, whole, waiting_since)
                return
            parser.finish()
            _model_of_deployment(record, call)
            if record.outcome == OK and not parser.complete:
                record.outcome = STREAM_INTERRUPTED
            # The record is final once the last upstream bytes were forwarded: SDKs may close
            # the connection as soon as they have the terminal event.
            self._finish(record, record.outcome)
            downstream.end()
        finally:
            if response is not None:
                response.release()

    @staticmethod
    async def _relay_stream(
        downstream: Downstream,
        response: UpstreamResponse,
        record: CallRecord,
        parser: ResponseParser,
        stream_filter: StreamFilter | None,
    ) -> None:
        """Pass the body on as it arrives (through `stream_filter`), parsing it on the way."""
        while True:
            waited = time.perf_counter()
            try:
                data = await response.read_chunk()
            finally:
                now = time.perf_counter()
                record.upstream_wait += now - waited
            if not data:
                break
            parser.feed(data, now)
            out = stream_filter.feed(data) if stream_filter is not None else data
            if out:
                downstream.write(out)
                await downstream.drain()
                record.client_wait += time.perf_counter() - now
        if stream_filter is not None:
            downstream.write(stream_filter.flush())

    def _send_whole(
        self,
        downstream: Downstream,
        response: UpstreamResponse,
        call: Call,
        record: CallRecord,
        parser: ResponseParser,
        data: bytes,
        waited: float,
    ) -> None:
        """A whole body: parse it, add cost and confidence headers, answer with one write."""
        now = time.perf_counter()
        record.upstream_wait += now - waited
        parser.feed(data, now)
        parser.finish()
        _model_of_deployment(record, call)
        headers = downstream_response_headers(response.headers)
        headers[REQUEST_ID_HEADER] = record.request_id
        if response.status < 400:
            if call.injected.logprobs:
                data = call.route.upstream.protocol.body_without_logprobs(data)
            if self._derived_headers is not None:
                headers.extend(self._derived_headers(record))
        self._finish(record, record.outcome)
        downstream.send(response.status, response.reason, headers.items(), data)

    def _fail(
        self,
        call: Call,
        record: CallRecord,
        downstream: Downstream,
        response: UpstreamResponse | None,
        parser: ResponseParser | None,
        relaying: bool,
        error: BaseException,
    ) -> None:
        """End a call that `error` cut short. Before its response began the downstream gets
        an error in the provider's shape (502, or 504 on a timeout); after, an aborted
        response; a cancelled caller gets nothing."""
        outcome = failure_outcome(error, record.upstream_headers is not None)
        if outcome == CONNECTION_ERROR:
            self._unreachable.note(
                record.upstream, record.server_address, record.server_port, error
            )
        if response is not None:
            response.close()
        if parser is not None:
            parser.finish()
            _model_of_deployment(record, call)
        self._finish(record, outcome)
        if outcome == CLIENT_CANCELLED:
            return
        if relaying:
            downstream.abort()
            return
        status = 504 if outcome == TIMEOUT else 502
        word = "timed out" if status == 504 else "could not be reached"
        message = f"model-sidecar: upstream {record.upstream!r} {word}"
        send_error(downstream, record, call.route.protocol, status, message)

    def _finish(self, record: CallRecord, outcome: str) -> None:
        record.outcome = outcome
        record.end = time.perf_counter()
        self._pipeline.submit(record)


def _model_of_deployment(record: CallRecord, call: Call) -> None:
    """A response that names no model gets the one the upstream's `deployments` map the
    requested deployment to (Azure OpenAI deployments are named freely)."""
    deployments = call.route.upstream.deployments
    if deployments and record.response_model is None and record.request.request_model:
        record.response_model = deployments.get(record.request.request_model)


async def _send(
    pool: UpstreamPool,
    method: str,
    target: str,
    headers: CIMultiDict[str],
    body: bytes,
    record: CallRecord,
    policy: RetryPolicy | None,
) -> UpstreamResponse:
    """The upstream's response, after as many attempts as `policy` allows (None: one).

    Nothing has reached the downstream yet, so a failed attempt can be retried. Time spent
    on attempts and waits counts as upstream wait; each retry is noted on the record. The
    last attempt's exception propagates when no retry is left.
    """
    attempt = 1
    if policy is not None:
        policy.budget.record_call(time.monotonic())
    while True:
        sent = time.perf_counter()
        try:
            response = await pool.request(method, target, headers, body)
        except UpstreamConnectError:
            record.upstream_wait += time.perf_counter() - sent
            if policy is None:
                raise
            reason = CONNECTION_ERROR
            delay = policy.delay(attempt + 1, reason, None, time.monotonic())
            if delay is None:
                raise
        except BaseException:
            record.upstream_wait += time.perf_counter() - sent
            raise
        else:
            record.upstream_wait += time.perf_counter() - sent
            if policy is None or response.status < 400:
                return response
            reason = str(response.status)
            delay = policy.delay(attempt + 1, reason, response.headers, time.monotonic())
            if delay is None:
                return response
            response.close()
        attempt += 1
        waited = time.perf_counter()
        try:
            await asyncio.sleep(delay)
        finally:
            record.upstream_wait += time.perf_counter() - waited
        record.sidecar_retries += 1
        record.retry_attempts.append(RetryAttempt(attempt, reason, delay, time.time_ns()))
