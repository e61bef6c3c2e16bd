"""Amazon Bedrock's error replies: `x-amzn-ErrorType` names the error, the body is
`{"message": ...}` (botocore reads the code from that header)."""

from __future__ import annotations

import uuid

import orjson
from aiohttp import web

_BEDROCK = "http://internal.amazon.com/coral/com.amazon.bedrock/"
# Errors of the authentication layer come from the shared AWS service framework.
_CORAL = "http://internal.amazon.com/coral/com.amazon.coral.service/"
_CORAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
    }
)

# status: (error code, default message), after the modelled errors of bedrock-runtime's
# service model (botocore/data/bedrock-runtime/2023-09-30/service-2.json).
_BY_STATUS: dict[int, tuple[str, str]] = {
    400: (
        "ValidationException",
        "Malformed input request, please reformat your input and try again.",
    ),
    403: (
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    404: ("ResourceNotFoundException", "The requested resource could not be found."),
    408: (
        "ModelTimeoutException",
        "Model has timed out in processing the request. Try your request again.",
    ),
    424: ("ModelErrorException", "The model returned an error. Try your request again."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: (
        "InternalServerException",
        "The server encountered an internal error while processing the request.",
    ),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}


def request_id() -> str:
    """A fresh `x-amzn-RequestId` (AWS sends a UUID on every reply, errors included)."""
    return str(uuid.uuid4())


def code_for(status: int) -> str:
    """The Bedrock error code a reply with `status` carries."""
    if status in _BY_STATUS:
        return _BY_STATUS[status][0]
    return "InternalServerException" if status >= 500 else "ValidationException"


def error_response(
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    retry_after: str | None = None,
) -> web.Response:
    """A Bedrock error reply; `code` defaults to the error Bedrock answers `status` with."""
    code = code or code_for(status)
    if message is None:
        message = _BY_STATUS.get(status, (code, "An error occurred."))[1]
    namespace = _CORAL if code in _CORAL_CODES else _BEDROCK
    headers = {
        "x-amzn-RequestId": request_id(),
        "x-amzn-ErrorType": f"{code}:{namespace}",
        "Content-Type": "application/json",
    }
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return web.Response(status=status, body=orjson.dumps({"message": message}), headers=headers)


def validation_error(message: str) -> web.Response:
    """400 ValidationException: a request body Bedrock or the model refuses."""
    return error_response(400, message)
