"""The simulator's URL table: which wire module answers which path, for every provider.

Paths served (POST unless noted):
- OpenAI: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses,
  /v1/audio/transcriptions (multipart), GET /v1/models; the Realtime API's WebSocket at
  GET /v1/realtime (and Azure's /openai/realtime, /openai/v1/realtime: openai_realtime.py)
- Anthropic: /v1/messages, /v1/messages/count_tokens
- Gemini API: /{v1|v1beta}/models/{model}:{generateContent|streamGenerateContent|countTokens|
  embedContent|batchEmbedContents}
- Vertex AI: /{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{model}:{the
  Gemini methods|predict}, and /.../publishers/anthropic/models/{model}:{rawPredict|
  streamRawPredict} (count-tokens:rawPredict counts for the model in the body)
- Azure OpenAI: /openai/deployments/{deployment}/{chat/completions|completions|embeddings|
  audio/transcriptions}?api-version=..., /openai/v1/{chat/completions|responses|embeddings|
  audio/transcriptions}, /openai/responses?api-version=...
- Ollama: /api/chat, /api/generate, /api/embed, /api/embeddings, /api/show, GET /api/tags,
  GET /api/version
- Amazon Bedrock: /model/{modelId}/{converse|converse-stream|invoke|invoke-with-response-stream}
  (SigV4-signed; see bedrock_routes.py)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, Protocol

import orjson
from aiohttp import web

from sidecar.simulate import (
    anthropic_wire,
    azure_wire,
    gemini_wire,
    ollama_wire,
    openai_audio,
    openai_responses,
    openai_wire,
    vertex_wire,
)
from sidecar.simulate.bedrock_routes import BedrockRuntime
from sidecar.simulate.call import Call
from sidecar.simulate.errors import error_response
from sidecar.simulate.profiles import ModelProfile
from sidecar.simulate.sigv4 import AwsAuth

Handler = Callable[[Call], Awaitable[web.StreamResponse]]
# Refuses a request before its body is parsed (a missing credential), or lets it pass (None).
Gate = Callable[[web.Request], web.Response | None]
# Turns a request body into the payload a wire module reads; ValueError = a 400 with its text.
Parse = Callable[[web.Request, bytes], Awaitable[dict[str, Any]]]
# Maps the model a request names to the model that serves it (None = no such model).
Resolve = Callable[[str], str | None]


async def json_body(request: web.Request, body: bytes) -> dict[str, Any]:
    """A JSON object request body (an empty body is an empty object)."""
    try:
        payload = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        raise ValueError("We could not parse the JSON body of your request.") from None
    if not isinstance(payload, dict):
        raise ValueError("The request body must be a JSON object.")
    return payload


class Serving(Protocol):
    """What the routes need from the Simulator."""

    @property
    def profiles(self) -> Mapping[str, ModelProfile]: ...

    @property
    def created(self) -> int: ...

    async def serve(
        self,
        provider: str,
        handler: Handler,
        request: web.Request,
        model: str | None = None,
        *,
        gate: Gate | None = None,
        parse: Parse = json_body,
        resolve: Resolve | None = None,
    ) -> web.StreamResponse: ...

    def remember(self, request: web.Request, body: bytes) -> None: ...

    def profile_for(self, model: str) -> ModelProfile: ...

    def deployment(self, name: str) -> str | None: ...

    @property
    def aws(self) -> AwsAuth: ...


def add_provider_routes(app: web.Application, sim: Serving) -> None:
    """Register every simulated provider's endpoints on `app`."""
    _Routes(sim).add(app)


def gemini_method(action: str, vertex: bool) -> Handler | None:
    """The handler of a Gemini method (Vertex AI also has `predict`), None if unknown."""
    if action in ("generateContent", "streamGenerateContent"):
        stream = action == "streamGenerateContent"
        return partial(gemini_wire.generate_content, stream=stream, vertex=vertex)
    methods: dict[str, Callable[..., Awaitable[web.StreamResponse]]] = {
        "countTokens": gemini_wire.count_tokens,
        "embedContent": gemini_wire.embed_content,
        "batchEmbedContents": gemini_wire.batch_embed_contents,
    }
    if action in methods:
        return partial(methods[action], vertex=vertex)
    if vertex and action == "predict":
        return gemini_wire.predict
    return None


class _Routes:
    """The request handlers that choose a wire module by path before serving the call."""

    def __init__(self, sim: Serving) -> None:
        self.sim = sim

    def add(self, app: web.Application) -> None:
        sim = self.sim
        router = app.router
        openai = partial(sim.serve, "openai")
        anthropic = partial(sim.serve, "anthropic")
        router.add_post("/v1/chat/completions", partial(openai, openai_wire.chat_completions))
        router.add_post("/v1/completions", partial(openai, openai_wire.completions))
        router.add_post("/v1/embeddings", partial(openai, openai_wire.embeddings))
        router.add_post("/v1/responses", partial(openai, openai_responses.responses))
        router.add_post(
            "/v1/audio/transcriptions",
            partial(openai, openai_audio.transcriptions, parse=openai_audio.parse_form),
        )
        router.add_get("/v1/models", self.models)
        router.add_post("/v1/messages", partial(anthropic, anthropic_wire.messages))
        router.add_post(
            "/v1/messages/count_tokens", partial(anthropic, anthropic_wire.count_tokens)
        )
        for version in ("v1", "v1beta"):
            router.add_post(f"/{version}/models/{{target}}", self.gemini)
        router.add_post(
            "/{version:v1|v1beta1}/projects/{project}/locations/{location}"
            "/publishers/{publisher}/models/{target}",
            self.vertex,
        )
        self.add_azure(app)
        self.add_ollama(app)
        BedrockRuntime(partial(sim.serve, "bedrock"), sim.remember, sim.aws).add_routes(app)

    def add_azure(self, app: web.Application) -> None:
        sim = self.sim
        router = app.router
        dialect = azure_wire.DIALECT
        chat = partial(openai_wire.chat_completions, dialect=dialect)
        completions = partial(openai_wire.completions, dialect=dialect)
        embeddings = partial(openai_wire.embeddings, dialect=dialect)
        transcriptions = partial(openai_audio.transcriptions, dialect=dialect)
        responses = partial(openai_responses.responses, dialect=dialect)
        form = openai_audio.parse_form
        # /openai/deployments/{deployment}/...?api-version=...: the path names the deployment.
        base = "/openai/deployments/{deployment}"
        router.add_post(base + "/chat/completions", partial(self.azure_deployment, chat))
        router.add_post(base + "/completions", partial(self.azure_deployment, completions))
        router.add_post(base + "/embeddings", partial(self.azure_deployment, embeddings))
        router.add_post(
            base + "/audio/transcriptions",
            partial(self.azure_deployment, transcriptions, parse=form),
        )
        # The v1 API and the older /openai/responses name the deployment in `model`.
        by_body = partial(sim.serve, "azure", resolve=sim.deployment)
        v1 = partial(by_body, gate=azure_wire.refuse_unauthenticated)
        router.add_post("/openai/v1/chat/completions", partial(v1, chat))
        router.add_post("/openai/v1/responses", partial(v1, responses))
        router.add_post("/openai/v1/embeddings", partial(v1, embeddings))
        router.add_post("/openai/v1/audio/transcriptions", partial(v1, transcriptions, parse=form))
        router.add_post(
            "/openai/responses",
            partial(by_body, responses, gate=azure_wire.refuse_deployment_call),
        )

    def add_ollama(self, app: web.Application) -> None:
        router = app.router
        ollama = partial(self.sim.serve, "ollama")
        router.add_post("/api/chat", partial(ollama, ollama_wire.chat))
        router.add_post("/api/generate", partial(ollama, ollama_wire.generate))
        router.add_post("/api/embed", partial(ollama, ollama_wire.embed))
        router.add_post("/api/embeddings", partial(ollama, ollama_wire.embeddings))
        router.add_post("/api/show", self.ollama_show)
        router.add_get("/api/tags", self.ollama_tags)
        router.add_get("/api/version", self.ollama_version)

    async def models(self, request: web.Request) -> web.Response:
        self.sim.remember(request, b"")
        return openai_wire.model_list(self.sim.profiles.values(), self.sim.created)

    async def gemini(self, request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["target"].rpartition(":")
        handler = gemini_method(action, vertex=False)
        if handler is None or not model:
            self.sim.remember(request, await request.read())
            return error_response("gemini", 404, f"Method not found: {action or model}.")
        return await self.sim.serve("gemini", handler, request, model)

    async def vertex(self, request: web.Request) -> web.StreamResponse:
        """Vertex AI: Gemini models in Gemini's format, Claude models in Anthropic's."""
        publisher = request.match_info["publisher"]
        model: str | None
        model, _, action = request.match_info["target"].rpartition(":")
        provider = "gemini"
        handler: Handler | None = None
        if publisher == "google" and model:
            handler = gemini_method(action, vertex=True)
        elif publisher == "anthropic" and model and action in ("rawPredict", "streamRawPredict"):
            provider = vertex_wire.ANTHROPIC_ERRORS
            handler = vertex_wire.raw_predict
            if model == "count-tokens":  # the model to count for is in the body
                handler, model = anthropic_wire.count_tokens, None
        if handler is None:
            self.sim.remember(request, await request.read())
            return error_response("gemini", 404, f"Method not found: {action or model}.")
        gate = vertex_wire.refuse_unauthenticated
        return await self.sim.serve(provider, handler, request, model, gate=gate)

    async def azure_deployment(
        self, handler: Handler, request: web.Request, parse: Parse = json_body
    ) -> web.StreamResponse:
        return await self.sim.serve(
            "azure",
            handler,
            request,
            request.match_info["deployment"],
            gate=azure_wire.refuse_deployment_call,
            parse=parse,
            resolve=self.sim.deployment,
        )

    async def ollama_tags(self, request: web.Request) -> web.Response:
        self.sim.remember(request, b"")
        return ollama_wire.tags(self.sim.profiles.values(), self.sim.created)

    async def ollama_version(self, request: web.Request) -> web.Response:
        self.sim.remember(request, b"")
        return ollama_wire.version()

    async def ollama_show(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.sim.remember(request, body)
        try:
            payload = await json_body(request, body)
        except ValueError as exc:
            return error_response("ollama", 400, str(exc))
        model = payload.get("model") or payload.get("name")
        if not isinstance(model, str):
            return error_response("ollama", 400, "model is required")
        return ollama_wire.show(self.sim.profile_for(model), self.sim.created)
