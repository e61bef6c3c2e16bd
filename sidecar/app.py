"""The composition root: builds every part of a sidecar once, starts and stops them, and swaps
in a reloaded config (SIGHUP, or a changed config file).

The order in which a finished call goes through the stages is written here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import disable_created_metrics

from sidecar import __version__
from sidecar.admin.auth import is_loopback
from sidecar.admin.listener import AdminListener
from sidecar.admin.token import TOKEN_FILE_ENV, TOKEN_FILE_SETTING, AdminToken
from sidecar.config.load import ConfigError
from sidecar.config.models import SidecarConfig, split_host_port
from sidecar.config.otel import wants_otlp_metrics, wants_spans
from sidecar.config.reload import RELOAD_INTERVAL_SECONDS, RESTART_SECTIONS, ReloadHistory
from sidecar.config.watch import watch_config_file
from sidecar.enrich import Enrichment, ForgetOutput
from sidecar.experiments.feedback import FEEDBACK_PATH
from sidecar.experiments.runtime import Experiments
from sidecar.experiments.shadow import ShadowRunner
from sidecar.forward.exchange import Exchange
from sidecar.forward.live import LiveRouting
from sidecar.forward.proxy import Proxy
from sidecar.forward.websocket import WebSocketForwarder
from sidecar.http1.bind import bind_failure
from sidecar.http1.listener import ProxyServer
from sidecar.pipeline import Pipeline, Sink, Stage, StageNeeds
from sidecar.record import NEED_OUTPUT, NEED_REQUEST_BODY, NEED_STREAM_USAGE
from sidecar.telemetry.access_log import AccessLogSink
from sidecar.telemetry.conventions import OPT_IN_VARIABLE, generations_for
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.model_changes import ModelChanges
from sidecar.telemetry.prometheus import PrometheusSink
from sidecar.telemetry.registry import MetricRegistry
from sidecar.telemetry.sessions import SessionTelemetry
from sidecar.ui.service import ComparisonPage

if TYPE_CHECKING:
    from sidecar.telemetry.otlp_metrics import OtlpMetricsExporter
    from sidecar.telemetry.tracing import TracingSink

log = logging.getLogger("sidecar.app")


class ListenError(Exception):
    """A listener could not bind its address; the message says which and why, in one line."""

    def __init__(self, role: str, flag: str, address: str, error: OSError) -> None:
        reason = bind_failure(error)
        super().__init__(
            f"cannot listen on {address} ({role}, {flag}): {reason}; choose another with {flag}"
        )


def _bound_url(address: tuple[str, int]) -> str:
    host, port = address[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


class Sidecar:
    """One running sidecar: start it, read its URLs, reload it, stop it gracefully."""

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
        # Reloads (SIGHUP, and a changed config_file) call config_loader for the new config.
        self.config_loader = config_loader
        self.config_file = Path(config_file) if config_file else None
        self.reload_interval = reload_interval
        self.reloads = ReloadHistory()
        self.environ = os.environ if environ is None else environ
        # The admin token (from its file; AdminTokenError when the file cannot be used).
        self.admin_token = AdminToken(config.admin_token_file)
        # The routing state (config, upstreams, router, pools, retry policy), swapped on reload.
        self.routing = LiveRouting(config)

        # No `_created` series: one more series per counter and histogram child that nothing
        # reads (the dashboards and alerts use rate() and increase()). prometheus_client keeps
        # this switch as module state, not per registry, so the composition root turns it off,
        # once per process, before any metric is created.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        # Telemetry: one registry for every metric, and the sinks that read finished calls,
        # in the GenAI convention generation(s) chosen once, here.
        self.generations = generations_for(
            self.environ.get(OPT_IN_VARIABLE), config.telemetry.semconv_stability_opt_in
        )
        self.drops = TelemetryDrops()
        self.metrics = MetricRegistry(config.telemetry, self.drops, self.generations)
        self.prometheus = PrometheusSink(self.metrics)
        # The OpenTelemetry SDK and its exporters are imported only when the variables ask
        # for spans or OTLP metrics: a sidecar without them is smaller and starts faster.
        self.tracing: TracingSink | None = None
        span_sampling: Stage | None = None
        if wants_spans(self.environ):
            from sidecar.telemetry.sampling import SpanSampling
            from sidecar.telemetry.tracing import build_tracing_sink

            self.tracing = build_tracing_sink(
                config.telemetry, self.environ, self.drops, self.generations
            )
            if self.tracing is not None:
                span_sampling = SpanSampling(self.tracing.sampler)
        # OTLP metrics read the registry's aggregates on their own schedule: no per-call work.
        self.otlp_metrics: OtlpMetricsExporter | None = None
        if wants_otlp_metrics(self.environ):
            from sidecar.telemetry.otlp_metrics import build_otlp_metrics

            self.otlp_metrics = build_otlp_metrics(self.metrics, self.environ)
        sinks: list[Sink] = [self.prometheus, ModelChanges(self.metrics)]
        if self.tracing is not None:
            sinks.append(self.tracing)
        if config.log.access_log:
            sinks.append(AccessLogSink())
        sinks.extend(extra_sinks)

        # The stages, in the order a finished call goes through them: the experiments'
        # stop-loss, pairs and audit sample read the cost and confidence before them; the
        # output kept for them is forgotten last unless spans capture content. Whether a
        # span is exported is decided once, for the tracing sink and the metrics' exemplars.
        capture = self.tracing is not None and self.tracing.capture_content
        self.enrichment = Enrichment(config)
        self.experiments = Experiments(config, self.metrics, self.routing.current.upstreams)
        candidates: tuple[Stage | None, ...] = (
            self.enrichment.cost,
            self.enrichment.confidence,
            self.enrichment.client_retries,
            self.enrichment.repeatability,
            self.experiments,
            None if capture else ForgetOutput(),
            span_sampling,
        )
        stages = [stage for stage in candidates if stage is not None]
        # Needed of every call, whatever the stages say: stream usage for the token metrics,
        # and the content of both sides when spans capture it.
        always = NEED_STREAM_USAGE if config.telemetry.inject_stream_usage else 0
        if capture:
            always |= NEED_OUTPUT | NEED_REQUEST_BODY
        self.needs = StageNeeds(stages, always)
        self.pipeline = Pipeline(sinks, stages, queue_size=config.telemetry.queue_size)

        # Forwarding: the exchange (shared by the app's calls and shadow copies), the proxy.
        enrichment = self.enrichment
        self.exchange = Exchange(
            self.pipeline,
            derived_headers=enrichment.response_headers if enrichment.sends_headers else None,
            reported_confidence_header=enrichment.reported_confidence_header,
            tracing=self.tracing is not None,
            propagate_traceparent=config.telemetry.propagate_traceparent,
        )
        self.shadows = ShadowRunner(self.exchange, self.routing, self.needs)
        # Realtime (WebSocket) sessions: relayed as they are; each response inside one is a
        # call through the pipeline, the session as a whole has telemetry of its own.
        self.sessions = SessionTelemetry(
            self.metrics,
            self.tracing,
            enrichment.cost.book if enrichment.cost is not None else None,
        )
        websockets = WebSocketForwarder(
            self.pipeline,
            self.sessions,
            tracing=self.tracing is not None,
            propagate_traceparent=config.telemetry.propagate_traceparent,
        )
        self.proxy = Proxy(
            self.routing,
            self.exchange,
            self.needs,
            self.experiments,
            self.shadows,
            {FEEDBACK_PATH: self.experiments.feedback_reply},
            websockets,
        )
        limits = config.limits
        self._proxy_server = ProxyServer(
            self.proxy.handle,
            max_body_bytes=limits.max_request_body_bytes,
            client_timeout=limits.client_read_timeout_seconds,
        )
        # The comparison page (`GET /` of the admin listener) and its history of the metrics.
        self.page = (
            ComparisonPage(
                self.metrics, self.experiments, self.status, config.ui.snapshot_interval_seconds
            )
            if config.ui.enabled
            else None
        )
        self.admin = AdminListener(
            metrics=self.metrics.render,
            draining=lambda: self.draining,
            status=self.status,
            experiments=self.experiments,
            token=self.admin_token.current,
            page=self.page,
        )
        self._background: set[asyncio.Task[None]] = set()
        self.draining = False
        self.stopped = False
        self.started_at = time.monotonic()

    @property
    def config(self) -> SidecarConfig:
        """The config calls start with now."""
        return self.routing.current.config

    @property
    def proxy_url(self) -> str:
        """The base URL apps point their SDKs at (without /v1)."""
        addresses = self._proxy_server.addresses
        assert addresses, "Sidecar.start() has not run"
        return _bound_url(addresses[0])

    @property
    def admin_url(self) -> str:
        """The admin listener: /metrics, /healthz, /readyz, /status, the page at /."""
        addresses = self.admin.addresses
        assert addresses, "Sidecar.start() has not run"
        return _bound_url(addresses[0])

    async def start(self) -> None:
        """Bind both listeners; with a config loader, reload on SIGHUP and on file changes."""
        self.pipeline.start()
        if self.otlp_metrics is not None:
            self.otlp_metrics.start()
        config = self.config
        host, port = split_host_port(config.listen)
        try:
            await self._proxy_server.start(host, port)
        except OSError as exc:
            await self.pipeline.close()
            raise ListenError("proxy", "--listen", config.listen, exc) from exc
        host, port = split_host_port(config.admin_listen)
        try:
            await self.admin.start(host, port)
        except OSError as exc:
            await self._proxy_server.shutdown(0)
            await self.pipeline.close()
            raise ListenError("admin", "--admin-listen", config.admin_listen, exc) from exc
        if self.page is not None:
            self.page.start()
        if self.tracing is not None:
            self.tracing.prepare_export()
        if not self.admin_token.configured and not (host == "localhost" or is_loopback(host)):
            log.warning(
                "the admin listener %s is not on loopback and no admin token is set: control "
                "endpoints (POST /experiments/...) answer loopback peers only; set %s or %s to "
                "a token file to call them from elsewhere",
                config.admin_listen,
                TOKEN_FILE_SETTING,
                TOKEN_FILE_ENV,
            )
        self._spawn(self.experiments.rollouts.run())
        if self.config_loader is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                # Only the main thread's loop can take signals.
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_now)
            if self.config_file is not None:
                self._spawn(
                    watch_config_file(self.config_file, self.reload_interval, self.reload_now)
                )
        # Said last: whoever reads this line may signal the process at once (a SIGHUP that
        # came before its handler would end the process).
        log.info(
            "listening",
            extra={"proxy": self.proxy_url, "admin": self.admin_url, "version": __version__},
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
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
            self.reloads.rejected(exc.errors)
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
        current = self.config
        ignored = [
            name for name in RESTART_SECTIONS if getattr(config, name) != getattr(current, name)
        ]
        if ignored:
            log.warning(
                "config reload: %s change(s) need a restart and were not applied",
                ", ".join(ignored),
                extra={"sections": ignored},
            )
            config = config.model_copy(update={name: getattr(current, name) for name in ignored})
        retired = self.routing.swap(config)
        limits = config.limits
        self._proxy_server.set_limits(
            max_body_bytes=limits.max_request_body_bytes,
            client_timeout=limits.client_read_timeout_seconds,
        )
        self.enrichment.client_retries.reconfigure(config.retries)
        self.experiments.reconfigure(config, self.routing.current.upstreams)
        self.admin_token.reload(config.admin_token_file)
        self.reloads.applied()
        log.info("config reloaded", extra={"experiments": [e.name for e in config.experiments]})
        if retired:
            self._spawn(self.routing.close_retired(lambda: self.proxy.in_flight))

    def status(self) -> dict[str, Any]:
        """What /status shows: read-only, no credentials."""
        return {
            "version": __version__,
            "uptime_seconds": round(time.monotonic() - self.started_at, 3),
            "draining": self.draining,
            "in_flight": self.proxy.in_flight,
            "asyncio_tasks": len(asyncio.all_tasks()),
            "gc_frozen_objects": gc.get_freeze_count(),
            "telemetry_dropped": self.drops.snapshot() | {"pipeline": self.pipeline.dropped_total},
            "tracing": self.tracing is not None,
            # Whether control endpoints need the token or answer loopback peers only (never
            # the token, nor its file's content).
            "admin_control": "token" if self.admin_token.configured else "loopback_only",
            "otlp_metrics": self.otlp_metrics is not None,
            "semconv_generations": [generation.key for generation in self.generations],
            "upstreams": {
                name: {
                    "url": upstream.base_url,
                    "protocol": upstream.protocol.name,
                    "path_prefix": upstream.path_prefix,
                }
                for name, upstream in self.routing.current.upstreams.items()
            },
            "experiments": self.experiments.status(),
            "shadow_in_flight": self.shadows.in_flight,
            "feedback_ids": len(self.experiments.feedback or ()),
            "config_reloads": self.reloads.snapshot(),
        }

    async def stop(self) -> None:
        """Stop accepting, let in-flight calls finish within the grace period, flush telemetry."""
        if self.stopped:
            return
        self.stopped = True
        self.draining = True
        grace = self.config.limits.shutdown_grace_seconds
        in_flight = self.proxy.in_flight
        log.info(
            "draining %d in-flight call%s, grace %g s",
            in_flight,
            "" if in_flight == 1 else "s",
            grace,
            extra={"in_flight": in_flight, "grace_seconds": grace},
        )
        started = time.monotonic()
        cut_off = await self._proxy_server.shutdown(grace)
        if cut_off:
            log.warning(
                "shutdown grace ran out: %d call%s cut off",
                cut_off,
                "" if cut_off == 1 else "s",
                extra={"in_flight": cut_off},
            )
        if self.config_loader is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.shadows.close()
        await self.experiments.aclose()
        await self.routing.close()
        await self.pipeline.close()
        if self.otlp_metrics is not None:
            # The final totals, after the last calls went through the pipeline.
            await asyncio.get_running_loop().run_in_executor(None, self.otlp_metrics.close)
        await self.admin.stop()
        if self.page is not None:
            await self.page.stop()
        log.info(
            "stopped after %.1f s of draining%s",
            time.monotonic() - started,
            f" ({cut_off} cut off)" if cut_off else ": every call finished",
        )
