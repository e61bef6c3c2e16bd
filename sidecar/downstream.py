"""The app's side of the forwarding path: its request target, and errors answered to it."""

from __future__ import annotations

from sidecar.experiments.feedback import REQUEST_ID_HEADER
from sidecar.http1.server import Responder
from sidecar.protocols.base import WireProtocol
from sidecar.record import CallRecord

JSON_CONTENT_TYPE = "application/json"


def send_error(
    responder: Responder, record: CallRecord, protocol: WireProtocol, status: int, message: str
) -> None:
    """Answer an error the sidecar decided itself, in the provider's shape, with the request id."""
    headers = (("Content-Type", JSON_CONTENT_TYPE), (REQUEST_ID_HEADER, record.request_id))
    responder.send(status, "", headers, protocol.error_body(status, message))


def origin_path(raw_path: str) -> str:
    """The path of a request target; an absolute-form target keeps only its path."""
    if raw_path.startswith("/"):
        return raw_path
    scheme_end = raw_path.find("://")
    if scheme_end < 0:
        return "/" + raw_path
    slash = raw_path.find("/", scheme_end + 3)
    return raw_path[slash:] if slash >= 0 else "/"
