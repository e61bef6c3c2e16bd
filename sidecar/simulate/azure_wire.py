"""Azure OpenAI: deployments mapped to models, its headers, content filter verdicts and gate."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from aiohttp import web

from sidecar.simulate.call import Call
from sidecar.simulate.errors import error_response
from sidecar.simulate.openai_wire import Dialect

# Deployment name → the model it serves. Teams name deployments freely; many name them
# after the model, so some entries map a model name to itself.
DEFAULT_DEPLOYMENTS: Mapping[str, str] = MappingProxyType(
    {
        "prod-gpt4o": "gpt-4o",
        "gpt-4o": "gpt-4o",
        "gpt-4o-mini": "gpt-4o-mini",
        "o3-mini": "o3-mini",
        "gpt-35-instruct": "gpt-3.5-turbo-instruct",
        "embeddings": "text-embedding-3-small",
        "text-embedding-3-small": "text-embedding-3-small",
        "whisper": "whisper-1",
        "gpt-4o-transcribe": "gpt-4o-transcribe",
        "realtime-prod": "gpt-realtime",
        "gpt-realtime": "gpt-realtime",
    }
)

_SAFE = {"filtered": False, "severity": "safe"}
_NOT_DETECTED = {"filtered": False, "detected": False}

PROMPT_FILTERS: list[dict[str, Any]] = [
    {
        "prompt_index": 0,
        "content_filter_results": {
            "hate": _SAFE,
            "jailbreak": _NOT_DETECTED,
            "self_harm": _SAFE,
            "sexual": _SAFE,
            "violence": _SAFE,
        },
    }
]

CHOICE_FILTERS: dict[str, Any] = {
    "hate": _SAFE,
    "protected_material_code": _NOT_DETECTED,
    "protected_material_text": _NOT_DETECTED,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}


def headers(call: Call) -> dict[str, str]:
    """The response headers Azure OpenAI sends with every reply."""
    ident = call.ident(32)
    request_id = f"{ident[:8]}-{ident[8:12]}-{ident[12:16]}-{ident[16:20]}-{ident[20:32]}"
    return {
        "apim-request-id": request_id,
        "x-request-id": request_id,
        "x-ms-region": "East US",
        "x-ms-rai-invoked": "true",
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-remaining-tokens": "99000",
        **call.quota_headers,
    }


DIALECT = Dialect(
    headers=headers,
    service_tier=False,
    sort_keys=True,
    prompt_filters=PROMPT_FILTERS,
    choice_filters=CHOICE_FILTERS,
)


def refuse_unauthenticated(request: web.Request) -> web.Response | None:
    """Azure's 401 when the request carries neither an `api-key` nor an `Authorization` header."""
    if "api-key" in request.headers or "Authorization" in request.headers:
        return None
    return error_response("azure", 401)


def refuse_deployment_call(request: web.Request) -> web.Response | None:
    """The deployment-style paths also need `?api-version=`; Azure answers 404 without one."""
    refusal = refuse_unauthenticated(request)
    if refusal is None and not request.query.get("api-version"):
        body = {"error": {"code": "404", "message": "Resource not found"}}
        refusal = web.json_response(body, status=404)
    return refusal
