"""Amazon Bedrock's runtime API (`/model/{modelId}/converse|converse-stream|invoke|
invoke-with-response-stream`): requests, bodies, AWS event streams and errors.

The model is only in the path, URL-encoded (`%3A`; an ARN's `/` as `%2F`). Converse has one
request and response shape for every model; InvokeModel's bodies are the model family's own
(bedrock_invoke.py). Requests reach AWS signed by the sidecar (sidecar/aws/).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson

from sidecar.protocols.bedrock_converse import ConverseBodyParser, ConverseStreamParser
from sidecar.protocols.bedrock_invoke import InvokeBodyParser, InvokeStreamParser
from sidecar.protocols.interface import WireProtocol
from sidecar.protocols.jsonfields import as_float, as_int, as_str, dig
from sidecar.protocols.parsers import ErrorParser, ResponseParser
from sidecar.record import CallRecord, RequestInfo

EVENT_STREAM = "application/vnd.amazon.eventstream"
CONVERSE = ("converse", "converse-stream")
INVOKE = ("invoke", "invoke-with-response-stream")
STREAMING = ("converse-stream", "invoke-with-response-stream")
# Every path of bedrock-runtime: the model operations (count-tokens and the bidirectional
# stream too), guardrails and asynchronous invocations; all are signed on the way.
_PREFIXES = ("/model/", "/guardrail/", "/async-invoke/")

# Error codes of the errors the sidecar itself answers with; botocore reads `__type`.
_ERROR_CODES = {
    400: "ValidationException",
    401: "AccessDeniedException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    413: "ValidationException",
    429: "ThrottlingException",
    502: "ServiceUnavailableException",
    503: "ServiceUnavailableException",
    504: "ModelTimeoutException",
}


class BedrockProtocol(WireProtocol):
    """Amazon Bedrock runtime: Converse, ConverseStream, InvokeModel (+ response stream)."""

    name = "bedrock"
    provider_name = "aws.bedrock"

    def claims(self, path: str) -> bool:
        return path.startswith(_PREFIXES) or path == "/async-invoke"

    def classify(self, method: str, path: str, query: str, body: Any) -> RequestInfo:
        info = RequestInfo()
        model, operation = bedrock_call(path)
        info.request_model = model
        if method.upper() != "POST" or model is None:
            return info
        info.stream = operation in STREAMING
        if operation in CONVERSE:
            info.operation = "chat"
            config = dig(body, "inferenceConfig")
            if isinstance(config, dict):
                info.max_tokens = as_int(config.get("maxTokens"))
                info.temperature = as_float(config.get("temperature"))
                info.top_p = as_float(config.get("topP"))
        elif operation in INVOKE:
            info.operation = invoke_operation(model)
            if isinstance(body, dict):
                _invoke_parameters(info, body)
        return info

    def response_parser(
        self, record: CallRecord, content_type: str, content_encoding: str
    ) -> ResponseParser:
        if record.http_status is not None and record.http_status >= 400:
            return ErrorParser(record, content_encoding, bedrock_error_type)
        _, operation = bedrock_call(record.path)
        stream = content_type.strip().lower().startswith(EVENT_STREAM)
        if operation in CONVERSE:
            if stream:
                return ConverseStreamParser(record, content_encoding)
            return ConverseBodyParser(record, content_encoding)
        if stream:
            return InvokeStreamParser(record, content_encoding)
        return InvokeBodyParser(record, content_encoding)

    def carries_credentials(self, headers: Mapping[str, str], query: str) -> bool:
        # A SigV4 signature is AWS's alone: such a request never goes to another provider.
        return headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256")

    def error_body(self, status: int, message: str) -> bytes:
        code = _ERROR_CODES.get(
            status, "InternalServerException" if status >= 500 else "ValidationException"
        )
        return orjson.dumps({"__type": code, "message": message})


def bedrock_call(path: str) -> tuple[str | None, str]:
    """(model id, operation) of `/model/{modelId}/{operation}`, the id URL-decoded;
    (None, "") for other paths."""
    path = path.partition("?")[0]
    if not path.startswith("/model/"):
        return None, ""
    # An ARN's slashes arrive encoded (boto3) or not: the operation is the last segment.
    resource, slash, operation = path[7:].rpartition("/")
    if not slash or not resource:
        return None, ""
    return unquote(resource), operation


def invoke_operation(model: str) -> str:
    """The operation of an InvokeModel call, as OpenTelemetry's botocore instrumentation names
    it: embeddings for embedding models, text_completion for Amazon Titan text, else chat."""
    lowered = model.lower()
    if "embed" in lowered:
        return "embeddings"
    if "amazon.titan" in lowered:
        return "text_completion"
    return "chat"


def bedrock_error_type(body: Any) -> str | None:
    """The error code of a Bedrock error body, when the body names one (it is usually only in
    the `x-amzn-ErrorType` header)."""
    code = as_str(dig(body, "__type")) or as_str(dig(body, "code"))
    if code is None:
        return None
    # "com.amazon.coral.service#UnrecognizedClientException", "ThrottlingException:http://..."
    return code.partition(":")[0].rpartition("#")[2] or None


def _invoke_parameters(info: RequestInfo, body: dict[str, Any]) -> None:
    """Sampling parameters of an InvokeModel body, whichever family's names it uses."""
    nested = body.get("inferenceConfig", body.get("textGenerationConfig"))
    if isinstance(nested, dict):
        # Amazon Nova (`max_new_tokens`, `top_p`; camelCase too) and Titan (`maxTokenCount`).
        info.max_tokens = as_int(
            nested.get("max_new_tokens", nested.get("maxTokens", nested.get("maxTokenCount")))
        )
        info.temperature = as_float(nested.get("temperature"))
        info.top_p = as_float(nested.get("top_p", nested.get("topP")))
        return
    # Anthropic, Mistral and Cohere (`max_tokens`), Meta Llama (`max_gen_len`).
    info.max_tokens = as_int(body.get("max_tokens", body.get("max_gen_len")))
    info.temperature = as_float(body.get("temperature"))
    info.top_p = as_float(body.get("top_p", body.get("p")))
