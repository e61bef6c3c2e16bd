"""The routing state a running sidecar forwards with — config, upstreams, router, connection pools,
retry policy — held in one place, shared by the proxy, shadow copies and the app, and swapped
whole on a reload: a call reads `LiveRouting.current` once and keeps that state to its end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sidecar.aws.credentials import AwsCredentials
from sidecar.config.models import AWS_SIGNING_SERVICES, LimitsConfig, SidecarConfig
from sidecar.forward.attribution import Attribution
from sidecar.forward.retry import RetryPolicy
from sidecar.forward.routing import Router, Upstream, build_upstreams
from sidecar.http1.client import SharedTls, UpstreamPool

# How often retired pools are checked for calls still using them.
RETIRED_POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Routing:
    """One config's routing state (never changed: a reload makes a new one)."""

    config: SidecarConfig
    upstreams: Mapping[str, Upstream]
    router: Router
    pools: Mapping[str, UpstreamPool]
    # None when the sidecar's own retries are off.
    retry_policy: RetryPolicy | None
    # The attribution header and its admitted values (None: attribution off).
    attribution: Attribution | None = None


def open_pool(upstream: Upstream, limits: LimitsConfig, tls: SharedTls) -> UpstreamPool:
    """Pooled connections to one upstream, with the configured limits."""
    return UpstreamPool(
        upstream.host,
        upstream.port,
        tls=upstream.tls,
        connect_timeout=limits.connect_timeout_seconds,
        read_timeout=limits.read_timeout_seconds,
        max_connections=limits.max_connections_per_upstream,
        shared_tls=tls,
    )


def _pool_settings(limits: LimitsConfig) -> tuple[float, float, int]:
    return (
        limits.connect_timeout_seconds,
        limits.read_timeout_seconds,
        limits.max_connections_per_upstream,
    )


class LiveRouting:
    """The current Routing, and the pools a reload replaced until no call can use them."""

    def __init__(self, config: SidecarConfig) -> None:
        # The pod's AWS credentials, looked up once the first AWS-signed upstream appears.
        self._aws: AwsCredentials | None = None
        # One client TLS context for every pool, this config's and the reloaded ones'.
        self._tls = SharedTls()
        upstreams = build_upstreams(config, self._aws_for(config))
        pools = {
            name: open_pool(upstream, config.limits, self._tls)
            for name, upstream in upstreams.items()
        }
        policy = RetryPolicy(config.retries) if config.retries.enabled else None
        attribution = Attribution(config.attribution) if config.attribution else None
        self.current = Routing(
            config, upstreams, Router(config, upstreams), pools, policy, attribution
        )
        self._retired: list[UpstreamPool] = []

    def swap(self, config: SidecarConfig) -> bool:
        """Route by `config` from now on; calls under way keep the state they started with.

        An upstream whose URL and pool limits did not change keeps its pool; an unchanged
        retry config keeps its policy (and its budget). True when a pool was retired."""
        old = self.current
        reuse = _pool_settings(old.config.limits) == _pool_settings(config.limits)
        upstreams = build_upstreams(config, self._aws_for(config))
        pools: dict[str, UpstreamPool] = {}
        for name, upstream in upstreams.items():
            previous = old.upstreams.get(name)
            kept = old.pools.get(name)
            if (
                reuse
                and kept is not None
                and previous is not None
                and previous.base_url == upstream.base_url
            ):
                pools[name] = kept
            else:
                pools[name] = open_pool(upstream, config.limits, self._tls)
        kept_ids = {id(pool) for pool in pools.values()}
        retired = [pool for pool in old.pools.values() if id(pool) not in kept_ids]
        self._retired.extend(retired)
        policy = old.retry_policy
        if config.retries != old.config.retries:
            policy = RetryPolicy(config.retries) if config.retries.enabled else None
        # An unchanged attribution config keeps the values it admitted (labels stay stable).
        attribution = old.attribution
        if config.attribution != old.config.attribution:
            attribution = Attribution(config.attribution) if config.attribution else None
        self.current = Routing(
            config, upstreams, Router(config, upstreams), pools, policy, attribution
        )
        return bool(retired)

    def _aws_for(self, config: SidecarConfig) -> AwsCredentials | None:
        """The AWS credentials holder, made (and its lookup started) when `config` first has
        an upstream whose requests the sidecar signs."""
        if self._aws is None:
            signed = [
                f"upstream {name!r}"
                for name, upstream in config.upstreams.items()
                if upstream.protocol in AWS_SIGNING_SERVICES
            ]
            if signed:
                self._aws = AwsCredentials(users=", ".join(signed))
        return self._aws

    async def close_retired(self, in_flight: Callable[[], int]) -> None:
        """Close the pools reloads replaced once no call is in flight (or the read timeout,
        the longest a call can still wait on one, has passed)."""
        deadline = time.monotonic() + self.current.config.limits.read_timeout_seconds
        retired, self._retired = self._retired, []
        while in_flight() and time.monotonic() < deadline:
            await asyncio.sleep(RETIRED_POLL_SECONDS)
        for pool in retired:
            await pool.close()

    async def close(self) -> None:
        """Close every pool, current and retired (at shutdown)."""
        for pool in [*self.current.pools.values(), *self._retired]:
            await pool.close()
        self._retired = []
