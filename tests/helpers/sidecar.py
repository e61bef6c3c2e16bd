"""Sidecars running in the test's own process, every upstream pointed at one URL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sidecar.app import Sidecar
from sidecar.config.models import SidecarConfig
from sidecar.pipeline import Sink

# What the `sidecar_factory` fixture hands a test: Sidecars.start.
SidecarFactory = Callable[..., Awaitable[Sidecar]]


def sidecar_config(upstream_url: str, overrides: dict[str, Any] | None = None) -> SidecarConfig:
    """A config with listeners on free loopback ports and every upstream at `upstream_url`."""
    data: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "admin_listen": "127.0.0.1:0",
        "upstreams": {name: {"url": upstream_url} for name in ("openai", "anthropic", "gemini")},
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return SidecarConfig.model_validate(data)


class Sidecars:
    """Starts sidecars pointed at `upstream_url`, each also feeding `sinks`; stops them all."""

    def __init__(self, upstream_url: str, sinks: Sequence[Sink]) -> None:
        self.upstream_url = upstream_url
        self.sinks = list(sinks)
        self.started: list[Sidecar] = []

    async def start(
        self,
        config_overrides: dict[str, Any] | None = None,
        environ: dict[str, str] | None = None,
        extra_sinks: Sequence[Sink] = (),
    ) -> Sidecar:
        """A started sidecar: the default config with `config_overrides` merged in."""
        config = sidecar_config(self.upstream_url, config_overrides)
        sidecar = Sidecar(config, extra_sinks=[*self.sinks, *extra_sinks], environ=environ or {})
        await sidecar.start()
        self.started.append(sidecar)
        return sidecar

    async def stop_all(self) -> None:
        for sidecar in self.started:
            await sidecar.stop()
