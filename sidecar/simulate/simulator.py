"""The Simulator: model profiles, faults and observations, served as one aiohttp app."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, NamedTuple

from aiohttp import web
from multidict import CIMultiDictProxy

from sidecar.simulate import azure_wire
from sidecar.simulate.call import Call
from sidecar.simulate.errors import error_response
from sidecar.simulate.faults import Controls, Fault, FaultQueue
from sidecar.simulate.openai_realtime import RealtimeLog, add_realtime_routes
from sidecar.simulate.profiles import (
    FALLBACK_PROFILE,
    ModelProfile,
    default_profiles,
    without_delays,
)
from sidecar.simulate.quota import HEADER_PROVIDERS, Quotas
from sidecar.simulate.routes import Gate, Handler, Parse, Resolve, add_provider_routes, json_body
from sidecar.simulate.sigv4 import AwsAuth
from sidecar.simulate.streaming import StreamEnded, pause

# A fixed `created` timestamp keeps replies byte-for-byte repeatable.
CREATED = 1_700_000_000
_MAX_DERIVED_PROFILES = 1024


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the simulator received it."""

    method: str
    path_qs: str
    headers: CIMultiDictProxy[str]
    body: bytes
    peer: str | None
    time: float  # time.monotonic()


class Disconnect(NamedTuple):
    """A client that closed its connection before its reply was complete."""

    path: str
    time: float  # time.monotonic()


class Simulator:
    """Simulated LLM providers (see routes.py) with reproducible behaviour."""

    def __init__(
        self,
        profiles: Iterable[ModelProfile] | Mapping[str, ModelProfile] | None = None,
        *,
        seed: int = 0,
        fastest: bool = False,
        fallback: ModelProfile = FALLBACK_PROFILE,
        created: int = CREATED,
        history: int = 1000,
        deployments: Mapping[str, str] | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        if profiles is None:
            chosen = default_profiles()
        elif isinstance(profiles, Mapping):
            chosen = dict(profiles)
        else:
            chosen = {profile.name: profile for profile in profiles}
        if fastest:
            chosen = {name: without_delays(profile) for name, profile in chosen.items()}
            fallback = without_delays(fallback)
        self.profiles: dict[str, ModelProfile] = chosen
        self.fallback = fallback
        self.fastest = fastest
        self.created = created
        # Azure OpenAI deployment name → the model it serves.
        self.deployments: dict[str, str] = dict(
            azure_wire.DEFAULT_DEPLOYMENTS if deployments is None else deployments
        )
        self.faults = FaultQueue()
        # Each model's request and token budget per window, reported in rate-limit headers.
        self.quotas = quotas if quotas is not None else Quotas()
        # What the simulated Bedrock accepts: AKIDSIMULATOR's SigV4 signatures unless told.
        self.aws = AwsAuth()
        self.received: deque[ReceivedRequest] = deque(maxlen=history)
        self.disconnects: deque[Disconnect] = deque(maxlen=history)
        # Realtime (WebSocket) sessions, every message of each kept.
        self.realtime = RealtimeLog(history)
        self._rng = random.Random(seed)
        self._derived: dict[str, ModelProfile] = {}

    # Profiles and faults ---------------------------------------------------------------

    def profile_for(self, model: str) -> ModelProfile:
        """The profile of `model`; an unknown model gets the fallback profile under its name."""
        profile = self.profiles.get(model) or self._derived.get(model)
        if profile is None:
            if len(self._derived) >= _MAX_DERIVED_PROFILES:
                self._derived.clear()
            profile = self._derived[model] = replace(self.fallback, name=model)
        return profile

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        retry_after: str | None = None,
        model: str | None = None,
    ) -> None:
        """Answer the next `count` calls (for `model`, if given) with `status`."""
        self.faults.add(Fault(count=count, status=status, retry_after=retry_after, model=model))

    def stall_next(
        self,
        count: int = 1,
        *,
        before_headers_s: float = 0.0,
        mid_stream_s: float = 0.0,
        model: str | None = None,
    ) -> None:
        """Stall the next `count` calls before their headers and/or after their first chunk."""
        fault = Fault(
            count=count,
            stall_before_headers_s=before_headers_s,
            stall_mid_stream_s=mid_stream_s,
            model=model,
        )
        self.faults.add(fault)

    def drop_next(self, count: int = 1, *, after_chunks: int = 0, model: str | None = None) -> None:
        """Close the connection of the next `count` calls after `after_chunks` output chunks."""
        self.faults.add(Fault(count=count, drop_after_chunks=after_chunks, model=model))

    def clear_faults(self) -> None:
        """Forget every queued fault."""
        self.faults.clear()

    async def wait_for_disconnect(self, timeout: float = 5.0, since: float = 0.0) -> Disconnect:
        """The first disconnect noticed after monotonic time `since`; TimeoutError if none."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.disconnects:
                if event.time >= since:
                    return event
            if time.monotonic() >= deadline:
                raise TimeoutError("the simulator saw no client disconnect")
            await asyncio.sleep(0.01)

    # The app -----------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """An aiohttp app serving every simulated provider's endpoints and `/_sim/faults`."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        add_provider_routes(app, self)
        add_realtime_routes(app, self)
        app.router.add_get("/_sim/faults", self._get_faults)
        app.router.add_post("/_sim/faults", self._post_faults)
        app.router.add_delete("/_sim/faults", self._delete_faults)
        return app

    def deployment(self, name: str) -> str | None:
        """The model an Azure OpenAI deployment serves, None for an unknown deployment."""
        return self.deployments.get(name)

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
    ) -> web.StreamResponse:
        """Answer one call with `handler`, errors in `provider`'s shape.

        `gate` may refuse the request first; `parse` reads its body; the model is `model`
        (from the path) or the body's `model`, mapped by `resolve` (e.g. an Azure deployment)
        to the model whose profile, faults and answer the call gets.
        """
        body = await request.read()
        self.remember(request, body)
        if gate is not None and (refusal := gate(request)) is not None:
            return refusal
        try:
            payload = await parse(request, body)
        except ValueError as exc:
            return error_response(provider, 400, str(exc))
        if model is None:
            model = payload.get("model")
            if not isinstance(model, str) or not model:
                return error_response(provider, 400, "You must provide a model parameter.")
        if resolve is not None:
            served = resolve(model)
            if served is None:
                return error_response(provider, 404)
            model = served
        profile = self.profile_for(model)
        controls = Controls.from_headers(request.headers)
        fault = self.faults.take(model)
        if fault is not None:
            controls.apply(fault)
        status = controls.status if controls.status is not None else self._draw_status(profile)
        quota_headers: dict[str, str] = {}
        if provider in HEADER_PROVIDERS and not request.path.startswith("/v1/projects/"):
            # Vertex AI's Anthropic models send no rate-limit headers; the others do.
            quota = self.quotas.take(provider, model, max(1, len(body) // 4), time.monotonic())
            quota_headers = self.quotas.headers(provider, quota)
            if quota.exhausted and status is None:
                status = 429
        call = Call(
            request=request,
            body=body,
            payload=payload,
            model=model,
            profile=profile,
            controls=controls,
            created=self.created,
            divergence=self._draw_divergence(profile),
            on_disconnect=partial(self._note_disconnect, request.path),
            quota_headers=quota_headers,
        )
        try:
            await pause(call, controls.stall_before_headers_s)
            if status is not None:
                return error_response(
                    provider, status, retry_after=controls.retry_after, headers=quota_headers
                )
            return await handler(call)
        except StreamEnded:
            return call.response if call.response is not None else web.Response()
        except asyncio.CancelledError:
            call.client_left()
            raise

    def remember(self, request: web.Request, body: bytes) -> None:
        """Keep `request` (with its body) in `received`."""
        self.received.append(
            ReceivedRequest(
                request.method,
                request.path_qs,
                request.headers,
                body,
                request.remote,
                time.monotonic(),
            )
        )

    def _note_disconnect(self, path: str) -> None:
        self.disconnects.append(Disconnect(path, time.monotonic()))

    def _draw_status(self, profile: ModelProfile) -> int | None:
        if profile.rate_limit_rate > 0 and self._rng.random() < profile.rate_limit_rate:
            return 429
        if profile.error_rate > 0 and self._rng.random() < profile.error_rate:
            return 500
        return None

    def _draw_divergence(self, profile: ModelProfile) -> bytes:
        if profile.divergence_rate > 0 and self._rng.random() < profile.divergence_rate:
            return self._rng.randbytes(8)
        return b""

    # /_sim/faults --------------------------------------------------------------------------

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"queued": len(self.faults)})

    async def _post_faults(self, request: web.Request) -> web.Response:
        try:
            data: Any = await request.json()
            items = data if isinstance(data, list) else [data]
            faults = [Fault.from_json(item) for item in items]
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        for fault in faults:
            self.faults.add(fault)
        return web.json_response({"queued": len(self.faults)})

    async def _delete_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"queued": 0})


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A Simulator listening on a socket, with the base URLs each SDK wants."""

    simulator: Simulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def base_url(self) -> str:
        """`http://host:port`: Anthropic's and Gemini's base URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """OpenAI's base URL, which includes `/v1`."""
        return self.base_url + "/v1"

    async def close(self) -> None:
        """Stop listening and finish open connections."""
        await self.runner.cleanup()


async def start_simulator(
    simulator: Simulator, host: str = "127.0.0.1", port: int = 0
) -> RunningSimulator:
    """Serve `simulator` on host:port (0 = any free port); handlers stop when clients leave."""
    runner = web.AppRunner(simulator.build_app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return RunningSimulator(simulator, runner, host, bound_port)


async def run_simulator(
    host: str,
    port: int,
    *,
    simulator: Simulator | None = None,
    on_ready: Callable[[RunningSimulator], None] | None = None,
) -> None:
    """Serve a Simulator on host:port until cancelled."""
    running = await start_simulator(simulator or Simulator(), host, port)
    try:
        if on_ready is not None:
            on_ready(running)
        await asyncio.Event().wait()
    finally:
        await running.close()
