"""Vertex AI: its gate, and Claude models served in Anthropic's Messages format by rawPredict.

Gemini models on Vertex speak Gemini's wire format (gemini_wire with `vertex=True`). Claude
models take the Messages body without `model` (the model is only in the path, e.g.
`claude-sonnet-4@20250514`) and with `anthropic_version` in the body instead of a header.
"""

from __future__ import annotations

from aiohttp import web

from sidecar.simulate import anthropic_wire
from sidecar.simulate.call import Call
from sidecar.simulate.errors import error_response

# The Anthropic error shape for a Claude model's own errors; Vertex's front end answers
# 401, 403 and 429 in Google's shape (see errors.py).
ANTHROPIC_ERRORS = "vertex-anthropic"


def refuse_unauthenticated(request: web.Request) -> web.Response | None:
    """Google's 401 when the request carries no `Authorization` (an OAuth 2 access token)."""
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return None
    message = (
        "Request is missing required authentication credential. Expected OAuth 2 access "
        "token, login cookie or other valid authentication credential."
    )
    return error_response("gemini", 401, message)


async def raw_predict(call: Call) -> web.StreamResponse:
    """POST .../publishers/anthropic/models/{model}:rawPredict or :streamRawPredict."""
    if not isinstance(call.payload.get("anthropic_version"), str):
        message = "anthropic_version: Field required"
        return error_response(ANTHROPIC_ERRORS, 400, message, headers=anthropic_wire.headers(call))
    return await anthropic_wire.messages(call)
