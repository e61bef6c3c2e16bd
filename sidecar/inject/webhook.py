"""The injector's HTTPS server: AdmissionReview in, JSON patch out (aiohttp)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from sidecar.inject.patch import InjectionTemplate, Scope, review_response

log = logging.getLogger("sidecar.inject")

MAX_REVIEW_BYTES = 8 * 1024 * 1024
CERT_CHECK_INTERVAL_SECONDS = 30.0


def tls_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or later) holding the serving certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class CertificateReloader:
    """Reloads the certificate into the live TLS context when its files change (renewals)."""

    def __init__(self, context: ssl.SSLContext, cert_file: str | Path, key_file: str | Path):
        self.context = context
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[float, float]:
        return (os.stat(self.cert_file).st_mtime, os.stat(self.key_file).st_mtime)

    def check(self) -> bool:
        """Load the files again if they changed since the last check; True when reloaded."""
        try:
            stamp = self._stamp()
            if stamp == self._seen:
                return False
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:  # half-written during a renewal: next time
            log.warning("certificate reload failed: %s", exc)
            return False
        self._seen = stamp
        log.info("certificate reloaded from %s", self.cert_file)
        return True

    async def run(self, interval: float = CERT_CHECK_INTERVAL_SECONDS) -> None:
        """Check forever, every `interval` seconds."""
        while True:
            await asyncio.sleep(interval)
            self.check()


def build_app(template: InjectionTemplate) -> web.Application:
    """The webhook's routes: POST /inject (pods opt in), /inject-namespace, GET /healthz."""

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    def handler(scope: Scope) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                review = json.loads(await request.read())
                answer, decision = review_response(review, template, scope)
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                return web.json_response({"error": f"bad AdmissionReview: {exc}"}, status=400)
            obj = review["request"].get("object") or {}
            metadata = obj.get("metadata", {}) if isinstance(obj, dict) else {}
            log.info(
                "admission",
                extra={
                    "namespace": review["request"].get("namespace"),
                    "pod": metadata.get("name") or metadata.get("generateName"),
                    "injected": decision.inject,
                    "reason": decision.reason,
                },
            )
            return web.json_response(answer)

        return handle

    app = web.Application(client_max_size=MAX_REVIEW_BYTES)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/inject", handler(Scope.POD))
    app.router.add_post("/inject-namespace", handler(Scope.NAMESPACE))
    return app


class WebhookServer:
    """One running injector: start it on HOST:PORT over TLS, read its URL, stop it."""

    def __init__(self, template: InjectionTemplate, context: ssl.SSLContext) -> None:
        self.template = template
        self.context = context
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> None:
        """Bind and serve (port 0 picks a free port)."""
        self._runner = web.AppRunner(build_app(self.template), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port, ssl_context=self.context).start()

    @property
    def url(self) -> str:
        """https://HOST:PORT of the bound listener."""
        assert self._runner is not None, "WebhookServer.start() has not run"
        host, port = self._runner.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{port}"

    async def stop(self) -> None:
        """Stop accepting and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve_webhook(
    listen: tuple[str, int], cert_file: str, key_file: str, template: InjectionTemplate
) -> int:
    """Run the injector until SIGTERM or SIGINT, reloading renewed certificates."""
    import signal
    import sys

    context = tls_context(cert_file, key_file)
    server = WebhookServer(template, context)
    await server.start(*listen)
    reloader = asyncio.create_task(CertificateReloader(context, cert_file, key_file).run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"model-sidecar inject-webhook: listening on {server.url}", file=sys.stderr, flush=True)
    await stop.wait()
    reloader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reloader
    await server.stop()
    return 0
