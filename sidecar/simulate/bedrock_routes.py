"""Amazon Bedrock runtime's routes, `POST /model/{modelId}/{operation}`: the signature is
checked first, as AWS does, then the call is served like every other simulated one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import orjson
from aiohttp import web

from sidecar.simulate import bedrock_invoke, bedrock_wire
from sidecar.simulate.bedrock_errors import error_response, validation_error
from sidecar.simulate.call import Call
from sidecar.simulate.sigv4 import AwsAuth

Handler = Callable[[Call], Awaitable[web.StreamResponse]]
# The Simulator's serving routine: (handler, request, model) -> reply, faults and profile applied.
Serve = Callable[[Handler, web.Request, str], Awaitable[web.StreamResponse]]
# Records a request the simulator refuses before serving it.
Remember = Callable[[web.Request, bytes], None]

OPERATIONS: dict[str, Handler] = {
    "converse": bedrock_wire.converse,
    "converse-stream": bedrock_wire.converse_stream,
    "invoke": partial(bedrock_invoke.invoke, stream=False),
    "invoke-with-response-stream": partial(bedrock_invoke.invoke, stream=True),
}
# aiohttp matches on the raw path and decodes the id: `%3A` and an ARN's `%2F` arrive decoded.
PATH = "/model/{model}/{operation:" + "|".join(OPERATIONS) + "}"


class BedrockRuntime:
    """Serves bedrock-runtime's four inference operations to SigV4-signed requests."""

    def __init__(self, serve: Serve, remember: Remember, auth: AwsAuth) -> None:
        self.serve = serve
        self.remember = remember
        self.auth = auth

    def add_routes(self, app: web.Application) -> None:
        """Register the routes on `app`."""
        app.router.add_post(PATH, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Check the signature and the body, then serve the operation."""
        body = await request.read()
        refusal = self.auth.check(request.method, request.raw_path, request.headers, body)
        if refusal is not None:
            self.remember(request, body)
            return error_response(refusal.status, refusal.message, code=refusal.code)
        try:
            payload = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            self.remember(request, body)
            return validation_error(
                "Malformed input request, please reformat your input and try again."
            )
        handler = OPERATIONS[request.match_info["operation"]]
        reply = await self.serve(handler, request, request.match_info["model"])
        return _in_bedrock_shape(reply)


def _in_bedrock_shape(reply: web.StreamResponse) -> web.StreamResponse:
    """An error the shared serving routine answered (a fault, a drawn 429 or 500) in
    Bedrock's shape; every other reply unchanged."""
    if (
        isinstance(reply, web.Response)
        and not reply.prepared
        and reply.status >= 400
        and "x-amzn-ErrorType" not in reply.headers
    ):
        return error_response(reply.status, retry_after=reply.headers.get("retry-after"))
    return reply
