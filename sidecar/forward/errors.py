"""Errors the sidecar answers to the app itself, in the provider's own error shape."""

from __future__ import annotations

from sidecar.forward.requestid import REQUEST_ID_HEADER
from sidecar.http1.listener import Responder
from sidecar.protocols.interface import WireProtocol
from sidecar.record import CallRecord

JSON_CONTENT_TYPE = "application/json"


def send_error(
    responder: Responder, record: CallRecord, protocol: WireProtocol, status: int, message: str
) -> None:
    """Answer an error the sidecar decided itself, in the provider's shape, with the request id."""
    headers = (("Content-Type", JSON_CONTENT_TYPE), (REQUEST_ID_HEADER, record.request_id))
    responder.send(status, "", headers, protocol.error_body(status, message))
