"""The app's side of the forwarding path: its request target and body, errors answered to it."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from sidecar.experiments.feedback import REQUEST_ID_HEADER
from sidecar.protocols.base import WireProtocol
from sidecar.record import CallRecord

JSON_CONTENT_TYPE = "application/json"


class ClientBodyTooLarge(Exception):
    """The app's request body is larger than the configured limit."""


async def read_body(
    request: web.BaseRequest, record: CallRecord, max_bytes: int, timeout: float
) -> bytes:
    """The whole request body, read within the client timeout and the size limit."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise ClientBodyTooLarge()
    if length == 0 or (length is None and not request.body_exists):
        return b""
    if length is not None:
        # Usually the whole body arrived with the head: take it without a timer.
        body = request.content.read_nowait(length)
        if len(body) == length:
            return body
    else:
        body = b""
    waited = time.perf_counter()
    async with asyncio.timeout(timeout):
        if length is not None:
            body += await request.content.readexactly(length - len(body))
        else:
            parts: list[bytes] = []
            size = 0
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > max_bytes:
                    raise ClientBodyTooLarge()
                parts.append(chunk)
            body = b"".join(parts)
    record.client_wait += time.perf_counter() - waited
    return body


def error_response(
    record: CallRecord, protocol: WireProtocol, status: int, message: str
) -> web.Response:
    """An error the sidecar answers itself, in the provider's shape, with the request id."""
    return web.Response(
        status=status,
        body=protocol.error_body(status, message),
        content_type=JSON_CONTENT_TYPE,
        headers={REQUEST_ID_HEADER: record.request_id},
    )


def origin_path(raw_path: str) -> str:
    """The path of a request target; an absolute-form target keeps only its path."""
    if raw_path.startswith("/"):
        return raw_path
    scheme_end = raw_path.find("://")
    if scheme_end < 0:
        return "/" + raw_path
    slash = raw_path.find("/", scheme_end + 3)
    return raw_path[slash:] if slash >= 0 else "/"


def is_client_side(exc: BaseException, request: web.BaseRequest) -> bool:
    """Whether a connection error came from writing to the app rather than reading upstream."""
    transport = request.transport
    return transport is None or transport.is_closing()
