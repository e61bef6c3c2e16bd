"""Azure OpenAI (`/openai/...`): OpenAI's wire format behind Azure's paths and error shape.

Two path styles reach it: the deployment style `/openai/deployments/{deployment}/{endpoint}
?api-version=...` (`openai.AzureOpenAI`), and the v1 API `/openai/v1/{endpoint}` (the plain
`openai.OpenAI` client), where the deployment is named in the body's `model`; AzureOpenAI
sends Responses API calls to `/openai/responses?api-version=...`. Bodies, streams and usage
are OpenAI's: the parsers, stream usage injection and its filter are the OpenAI protocol's.
An Azure stream opens with a chunk whose `choices` is empty and which carries the prompt
filter results: it is the app's (the filter removes only the usage chunk the sidecar asked
for, which has usage as well as empty choices).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson

from sidecar.protocols.jsonfields import read_request_params
from sidecar.protocols.openai import API_TYPES, OPERATIONS, OpenAIProtocol, asks_for_logprobs
from sidecar.record import RequestInfo

_DEPLOYMENT = re.compile(r"/openai/deployments/([^/]+)(?:/(.*?))?/?$")
_UNVERSIONED = re.compile(r"/openai/(?:v1/)?(chat/completions|completions|embeddings|responses)/?$")
# The Realtime API's WebSocket paths: AzureOpenAI's (`?api-version=&deployment=`) and v1's.
REALTIME_PATHS = frozenset(("/openai/realtime", "/openai/v1/realtime"))
# The old "on your data" extension answers chat completions too.
_EXTENSION_PREFIX = "extensions/"


class AzureProtocol(OpenAIProtocol):
    """Azure OpenAI: deployments (`?api-version=`) and the v1 API under `/openai/`."""

    name = "azure"
    provider_name = "azure.ai.openai"

    def claims(self, path: str) -> bool:
        return path.startswith("/openai/")

    def classify(self, method: str, path: str, query: str, body: Any) -> RequestInfo:
        info = RequestInfo()
        if isinstance(body, dict):
            read_request_params(info, body)
            info.logprobs = asks_for_logprobs(body)
        deployment, endpoint = azure_call(path)
        if info.request_model is None:
            info.request_model = deployment
        if endpoint is not None:
            info.api_type = API_TYPES.get(endpoint)
            if method.upper() == "POST":
                info.operation = OPERATIONS[endpoint]
        return info

    def accepts_websocket(self, path: str) -> bool:
        return path in REALTIME_PATHS

    def carries_credentials(self, headers: Mapping[str, str], query: str) -> bool:
        return "api-key" in headers

    def error_body(self, status: int, message: str) -> bytes:
        """Azure's own error shape: `{"error": {"code", "message"}}`."""
        return orjson.dumps({"error": {"code": str(status), "message": message}})


def azure_call(path: str) -> tuple[str | None, str | None]:
    """(deployment, endpoint) of an Azure OpenAI path: the deployment named in a deployment
    style path (else None), and `chat/completions`, `completions`, `embeddings` or
    `responses` when the path ends in one (else None)."""
    path = path.partition("?")[0]
    match = _DEPLOYMENT.match(path)
    if match is not None:
        deployment = unquote(match.group(1)) or None
        endpoint = (match.group(2) or "").removeprefix(_EXTENSION_PREFIX)
        return deployment, endpoint if endpoint in OPERATIONS else None
    match = _UNVERSIONED.match(path)
    return None, match.group(1) if match else None
