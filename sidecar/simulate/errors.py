"""Error replies in each provider's own body shape, with the status codes they use."""

from __future__ import annotations

import orjson
from aiohttp import web

_OPENAI: dict[int, tuple[str, str | None, str]] = {
    # status: (type, code, message)
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1s.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_ANTHROPIC: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("overloaded_error", "Overloaded"),
    529: ("overloaded_error", "Overloaded"),
}

_GEMINI: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}

# Azure's own gateway answers these in its shape ({"error": {"code", "message"}}); errors of
# the model behind it (500, 503, ...) keep OpenAI's shape.
_AZURE: dict[int, tuple[str, str]] = {
    401: (
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API "
        "endpoint for your resource.",
    ),
    404: (
        "DeploymentNotFound",
        "The API deployment for this resource does not exist. If you created the deployment "
        "within the last 5 minutes, please wait a moment and try again.",
    ),
    429: (
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded "
        "call rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.",
    ),
}

# Vertex AI's front end answers these for every publisher in Google's shape; everything
# else on a Claude model comes from Anthropic in Anthropic's shape.
_VERTEX_FRONT_END = frozenset({401, 403, 429})

_OLLAMA: dict[int, str] = {
    400: "invalid request",
    404: "model not found, try pulling it first",
    429: "too many requests",
    500: "an error was encountered while running the model",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


def error_body(provider: str, status: int, message: str | None = None) -> bytes:
    """The JSON error body `provider` sends with `status`.

    Providers: "openai", "azure", "anthropic", "vertex-anthropic", "gemini", "ollama".
    """
    if provider == "vertex-anthropic":
        provider = "gemini" if status in _VERTEX_FRONT_END else "anthropic"
    if provider == "azure":
        if status in _AZURE:
            azure_code, default = _AZURE[status]
            return orjson.dumps({"error": {"code": azure_code, "message": message or default}})
        provider = "openai"
    if provider == "ollama":
        return orjson.dumps({"error": message or _OLLAMA.get(status, "internal error")})
    if provider == "anthropic":
        kind, default = _ANTHROPIC.get(status, ("api_error", "Internal server error"))
        return orjson.dumps(
            {"type": "error", "error": {"type": kind, "message": message or default}}
        )
    if provider == "gemini":
        state, default = _GEMINI.get(status, ("UNKNOWN", "Unknown error."))
        error = {"code": status, "message": message or default, "status": state}
        return orjson.dumps({"error": error}, option=orjson.OPT_INDENT_2)
    kind, code, default = _OPENAI.get(status, ("server_error", None, "Server error."))
    error = {"message": message or default, "type": kind, "param": None, "code": code}
    return orjson.dumps({"error": error}, option=orjson.OPT_INDENT_2)


def error_response(
    provider: str,
    status: int,
    message: str | None = None,
    retry_after: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A complete error reply; a 429 always tells the client when to retry."""
    reply_headers = dict(headers or {})
    if retry_after is None and status == 429:
        retry_after = "1"
    if retry_after is not None:
        reply_headers["retry-after"] = retry_after
    front_end = provider == "vertex-anthropic" and status in _VERTEX_FRONT_END
    google = provider == "gemini" or front_end
    content_type = "application/json; charset=UTF-8" if google else "application/json"
    if provider == "ollama":
        content_type = "application/json; charset=utf-8"
    reply_headers["Content-Type"] = content_type
    return web.Response(
        status=status, body=error_body(provider, status, message), headers=reply_headers
    )
