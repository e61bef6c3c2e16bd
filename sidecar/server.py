"""Builds the sidecar: the proxy listener, the admin listener, the pipeline and its sinks."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from sidecar import __version__
from sidecar.config import SidecarConfig, split_host_port
from sidecar.enrich import Enrichment
from sidecar.listener import HeadTimeoutServer
from sidecar.pipeline import Pipeline, Sink
from sidecar.proxy import Proxy
from sidecar.routing import Router, build_upstreams
from sidecar.telemetry.access_log import AccessLogSink
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.prometheus import PrometheusSink
from sidecar.telemetry.tracing import build_tracing_sink

log = logging.getLogger("sidecar.server")


def _bound_url(runner: web.BaseRunner) -> str:
    host, port = runner.addresses[0][:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


class Sidecar:
    """One running sidecar: start it, read its URLs, stop it gracefully."""

    def __init__(
        self,
        config: SidecarConfig,
        *,
        extra_sinks: Sequence[Sink] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.environ = os.environ if environ is None else environ
        self.drops = TelemetryDrops()
        self.prometheus = PrometheusSink(config.telemetry, self.drops)
        self.tracing = build_tracing_sink(config.telemetry, self.environ, self.drops)
        sinks: list[Sink] = [self.prometheus]
        if self.tracing is not None:
            sinks.append(self.tracing)
        if config.log.access_log:
            sinks.append(AccessLogSink())
        sinks.extend(extra_sinks)
        self.enrichment = Enrichment(config)
        self.pipeline = Pipeline(
            sinks, enrichers=self.enrichment.enrichers, queue_size=config.telemetry.queue_size
        )
        self.upstreams = build_upstreams(config)
        self.router = Router(config, self.upstreams)
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self.proxy: Proxy | None = None
        self.draining = False
        self.stopped = False
        self.started_at = time.monotonic()
        self._proxy_runner: web.ServerRunner | None = None
        self._admin_runner: web.AppRunner | None = None
        self._proxy_site: web.TCPSite | None = None

    @property
    def proxy_url(self) -> str:
        """The base URL apps point their SDKs at (without /v1)."""
        assert self._proxy_runner is not None, "Sidecar.start() has not run"
        return _bound_url(self._proxy_runner)

    @property
    def admin_url(self) -> str:
        """The admin listener: /metrics, /healthz, /readyz, /status."""
        assert self._admin_runner is not None, "Sidecar.start() has not run"
        return _bound_url(self._admin_runner)

    def _session(self) -> aiohttp.ClientSession:
        limits = self.config.limits
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections_per_upstream, ttl_dns_cache=300
        )
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=limits.connect_timeout_seconds,
            sock_read=limits.read_timeout_seconds,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            trust_env=False,
        )

    async def start(self) -> None:
        """Open upstream sessions and bind both listeners."""
        self.sessions = {name: self._session() for name in self.upstreams}
        self.pipeline.start()
        tracing = self.tracing is not None
        self.proxy = Proxy(
            self.config,
            self.router,
            self.sessions,
            self.pipeline,
            tracing=tracing,
            capture_content=bool(self.tracing and self.tracing.capture_content),
            enrichment=self.enrichment,
        )
        server = HeadTimeoutServer(
            self.proxy.handle,
            head_timeout=self.config.limits.client_read_timeout_seconds,
            handler_cancellation=True,
            access_log=None,
            max_field_size=65536,
        )
        self._proxy_runner = web.ServerRunner(server, handle_signals=False)
        await self._proxy_runner.setup()
        host, port = split_host_port(self.config.listen)
        self._proxy_site = web.TCPSite(self._proxy_runner, host, port, reuse_address=True)
        await self._proxy_site.start()

        self._admin_runner = web.AppRunner(self._admin_app(), handle_signals=False, access_log=None)
        await self._admin_runner.setup()
        host, port = split_host_port(self.config.admin_listen)
        await web.TCPSite(self._admin_runner, host, port, reuse_address=True).start()
        log.info(
            "listening",
            extra={"proxy": self.proxy_url, "admin": self.admin_url, "version": __version__},
        )

    def _admin_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/status", self._status)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.prometheus.render(request.headers.get("Accept", ""))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.draining:
            return web.Response(status=503, text="draining\n")
        return web.Response(text="ready\n")

    async def _status(self, request: web.Request) -> web.Response:
        status: dict[str, Any] = {
            "version": __version__,
            "uptime_seconds": round(time.monotonic() - self.started_at, 3),
            "draining": self.draining,
            "in_flight": self.proxy.in_flight if self.proxy else 0,
            "asyncio_tasks": len(asyncio.all_tasks()),
            "telemetry_dropped": self.drops.snapshot() | {"pipeline": self.pipeline.dropped_total},
            "tracing": self.tracing is not None,
            "upstreams": {
                name: {
                    "url": upstream.base_url,
                    "protocol": upstream.protocol.name,
                    "path_prefix": upstream.path_prefix,
                }
                for name, upstream in self.upstreams.items()
            },
        }
        return web.json_response(status)

    async def stop(self) -> None:
        """Stop accepting, let in-flight calls finish within the grace period, flush telemetry."""
        if self.stopped:
            return
        self.stopped = True
        self.draining = True
        if self._proxy_site is not None:
            await self._proxy_site.stop()
        grace = self.config.limits.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        while self.proxy is not None and self.proxy.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.proxy is not None and self.proxy.in_flight:
            log.warning("shutdown grace ran out", extra={"in_flight": self.proxy.in_flight})
        if self._proxy_runner is not None:
            await self._proxy_runner.cleanup()
        for session in self.sessions.values():
            await session.close()
        await self.pipeline.close()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
