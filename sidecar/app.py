"""Builds the sidecar: the proxy listener, the admin listener, the pipeline and its sinks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sidecar import __version__
from sidecar.admin import AdminListener
from sidecar.config.load import ConfigError
from sidecar.config.models import SidecarConfig, split_host_port
from sidecar.config.reload import RELOAD_INTERVAL_SECONDS, RESTART_SECTIONS
from sidecar.enrich import Enrichment, forget_output
from sidecar.experiments.runtime import Experiments
from sidecar.forward.proxy import Proxy
from sidecar.forward.routing import Router, Upstream, build_upstreams
from sidecar.http1.client import UpstreamPool
from sidecar.http1.listener import ProxyServer
from sidecar.pipeline import Pipeline, Sink
from sidecar.telemetry.access_log import AccessLogSink
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.prometheus import PrometheusSink
from sidecar.telemetry.tracing import build_tracing_sink

log = logging.getLogger("sidecar.app")


def _bound_url(address: tuple[str, int]) -> str:
    host, port = address[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


def _pool(upstream: Upstream, config: SidecarConfig) -> UpstreamPool:
    """Pooled connections to one upstream, with the configured limits."""
    limits = config.limits
    return UpstreamPool(
        upstream.host,
        upstream.port,
        tls=upstream.tls,
        connect_timeout=limits.connect_timeout_seconds,
        read_timeout=limits.read_timeout_seconds,
        max_connections=limits.max_connections_per_upstream,
    )


class Sidecar:
    """One running sidecar: start it, read its URLs, stop it gracefully."""

    def __init__(
        self,
        config: SidecarConfig,
        *,
        extra_sinks: Sequence[Sink] = (),
        environ: Mapping[str, str] | None = None,
        config_loader: Callable[[], SidecarConfig] | None = None,
        config_file: str | Path | None = None,
        reload_interval: float = RELOAD_INTERVAL_SECONDS,
    ) -> None:
        self.config = config
        # Reloads (SIGHUP, and a changed config_file) call config_loader for the new config.
        self.config_loader = config_loader
        self.config_file = Path(config_file) if config_file else None
        self.reload_interval = reload_interval
        self.reloads: dict[str, Any] = {"count": 0, "last_unix": None, "last_errors": []}
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
        self.pools: dict[str, UpstreamPool] = {}
        self.experiments = Experiments(
            config, self.prometheus, self.pipeline, self.upstreams, lambda: self.pools
        )
        # Experiment stages read output kept for enrichment: before it is forgotten.
        stages = self.pipeline.enrichers
        stages.insert(stages.index(forget_output), self.experiments.observe)
        self._retired: list[UpstreamPool] = []
        self._background: set[asyncio.Task[None]] = set()
        self.proxy: Proxy | None = None
        self.draining = False
        self.stopped = False
        self.started_at = time.monotonic()
        self._proxy_server: ProxyServer | None = None
        self.admin = AdminListener(
            metrics=self.prometheus.render,
            draining=lambda: self.draining,
            status=self.status,
            experiments=self.experiments,
        )

    @property
    def proxy_url(self) -> str:
        """The base URL apps point their SDKs at (without /v1)."""
        assert self._proxy_server is not None, "Sidecar.start() has not run"
        return _bound_url(self._proxy_server.addresses[0])

    @property
    def admin_url(self) -> str:
        """The admin listener: /metrics, /healthz, /readyz, /status."""
        addresses = self.admin.addresses
        assert addresses, "Sidecar.start() has not run"
        return _bound_url(addresses[0])

    async def start(self) -> None:
        """Open upstream pools and bind both listeners."""
        self.pools = {
            name: _pool(upstream, self.config) for name, upstream in self.upstreams.items()
        }
        self.pipeline.start()
        tracing = self.tracing is not None
        self.proxy = Proxy(
            self.config,
            self.router,
            self.pools,
            self.pipeline,
            tracing=tracing,
            capture_content=bool(self.tracing and self.tracing.capture_content),
            enrichment=self.enrichment,
            experiments=self.experiments,
        )
        limits = self.config.limits
        self._proxy_server = ProxyServer(
            self.proxy.handle,
            max_body_bytes=limits.max_request_body_bytes,
            client_timeout=limits.client_read_timeout_seconds,
        )
        host, port = split_host_port(self.config.listen)
        await self._proxy_server.start(host, port)

        host, port = split_host_port(self.config.admin_listen)
        await self.admin.start(host, port)
        log.info(
            "listening",
            extra={"proxy": self.proxy_url, "admin": self.admin_url, "version": __version__},
        )
        if self.config_loader is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                # Only the main thread's loop can take signals.
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_now)
            if self.config_file is not None:
                self._spawn(self._watch_config_file())

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Config reload ------------------------------------------------------------------------

    def reload_now(self) -> bool:
        """Load the config again (SIGHUP): swap it in if valid, else keep the old one and log
        every error. True when the new config was taken."""
        assert self.config_loader is not None, "no config_loader: nothing to reload from"
        try:
            config = self.config_loader()
        except ConfigError as exc:
            self.reloads["last_errors"] = exc.errors
            log.error(
                "config reload rejected: the old config keeps serving (%d error(s))",
                len(exc.errors),
                extra={"errors": exc.errors},
            )
            for line in exc.errors:
                log.error("config reload: %s", line)
            return False
        self.reload(config)
        return True

    def reload(self, config: SidecarConfig) -> None:
        """Swap in a validated config at once: routes, pools of changed upstreams, limits,
        retries, experiments, feedback and audit. Calls under way finish on the old one."""
        ignored = [
            name for name in RESTART_SECTIONS if getattr(config, name) != getattr(self.config, name)
        ]
        if ignored:
            log.warning(
                "config reload: %s change(s) need a restart and were not applied",
                ", ".join(ignored),
                extra={"sections": ignored},
            )
            config = config.model_copy(
                update={name: getattr(self.config, name) for name in ignored}
            )
        old_limits, new_limits = self.config.limits, config.limits
        new_pools = (
            old_limits.connect_timeout_seconds,
            old_limits.read_timeout_seconds,
            old_limits.max_connections_per_upstream,
        ) != (
            new_limits.connect_timeout_seconds,
            new_limits.read_timeout_seconds,
            new_limits.max_connections_per_upstream,
        )
        upstreams = build_upstreams(config)
        pools: dict[str, UpstreamPool] = {}
        for name, upstream in upstreams.items():
            old = self.upstreams.get(name)
            kept = self.pools.get(name)
            if (
                kept is not None
                and not new_pools
                and old is not None
                and old.base_url == upstream.base_url
            ):
                pools[name] = kept
            else:
                pools[name] = _pool(upstream, config)
        kept_ids = {id(pool) for pool in pools.values()}
        self._retired.extend(p for p in self.pools.values() if id(p) not in kept_ids)
        self.config, self.upstreams = config, upstreams
        self.router = Router(config, upstreams)
        self.pools = pools
        if self.proxy is not None:
            self.proxy.reconfigure(config, self.router, pools)
        if self._proxy_server is not None:
            self._proxy_server.set_limits(
                max_body_bytes=new_limits.max_request_body_bytes,
                client_timeout=new_limits.client_read_timeout_seconds,
            )
        self.enrichment.client_retries.reconfigure(config.retries)
        self.experiments.reconfigure(config, upstreams)
        self.reloads["count"] += 1
        self.reloads["last_unix"] = time.time()
        self.reloads["last_errors"] = []
        log.info("config reloaded", extra={"experiments": [e.name for e in config.experiments]})
        if self._retired:
            self._spawn(self._close_retired_pools())

    async def _close_retired_pools(self) -> None:
        """Close pools a reload replaced once no call can still use them."""
        deadline = time.monotonic() + self.config.limits.read_timeout_seconds
        retired, self._retired = self._retired, []
        while self.proxy is not None and self.proxy.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        for pool in retired:
            await pool.close()

    async def _watch_config_file(self) -> None:
        """Reload when the config file changes (Kubernetes swaps a ConfigMap's symlink)."""
        assert self.config_file is not None
        last = _file_signature(self.config_file)
        while True:
            await asyncio.sleep(self.reload_interval)
            current = _file_signature(self.config_file)
            if current != last and current is not None:
                last = current
                log.info("config file changed", extra={"path": str(self.config_file)})
                self.reload_now()

    def status(self) -> dict[str, Any]:
        """What /status shows: read-only, no credentials."""
        return {
            "version": __version__,
            "uptime_seconds": round(time.monotonic() - self.started_at, 3),
            "draining": self.draining,
            "in_flight": self.proxy.in_flight if self.proxy else 0,
            "asyncio_tasks": len(asyncio.all_tasks()),
            "gc_frozen_objects": gc.get_freeze_count(),
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
            "experiments": self.experiments.status(),
            "shadow_in_flight": self.experiments.shadows.in_flight,
            "feedback_ids": len(self.experiments.feedback or ()),
            "config_reloads": self.reloads,
        }

    async def stop(self) -> None:
        """Stop accepting, let in-flight calls finish within the grace period, flush telemetry."""
        if self.stopped:
            return
        self.stopped = True
        self.draining = True
        if self._proxy_server is not None:
            cut_off = await self._proxy_server.shutdown(self.config.limits.shutdown_grace_seconds)
            if cut_off:
                log.warning("shutdown grace ran out", extra={"in_flight": cut_off})
        if self.config_loader is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.experiments.close()
        for pool in [*self.pools.values(), *self._retired]:
            await pool.close()
        await self.pipeline.close()
        await self.admin.stop()


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of a file, following symlinks; None when it cannot be read."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns
